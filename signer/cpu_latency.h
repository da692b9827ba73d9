/*
 * cpu_latency.h - a CPU wake-up latency limit (Linux PM QoS) held while the
 * daemon has requests in.
 *
 * An idle CPU that halts takes time to run again when work arrives; on a
 * virtual machine whose idle vCPUs halt at once that is tens of microseconds
 * per hand-off between threads and processes, and its tail reaches
 * milliseconds. A request crosses a dozen such hand-offs (loop, writer, zone
 * thread, HSM process, and back). Writing a limit to /dev/cpu_dma_latency
 * keeps every CPU out of the idle states slower to leave than the limit (0:
 * idle CPUs poll) for as long as the file stays open at that value.
 *
 * Held, the limit costs power (or the host's CPU time on a VM) while the
 * daemon has nothing to do, so it is held only while requests are in and
 * for a hold time after the last one, then released (the kernel's default
 * value written back). Closing the handle, or the process ending, releases
 * it too. Everything runs on the loop's thread.
 */
#ifndef REGSIGN_CPU_LATENCY_H
#define REGSIGN_CPU_LATENCY_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/** The kernel's device for the request. */
#define CPU_LATENCY_DEVICE "/dev/cpu_dma_latency"

/** What is written to release the limit: the kernel's default (no limit). */
#define CPU_LATENCY_NONE 2000000000

typedef struct cpu_latency cpu_latency_t;

/** Counters for STATUS. */
struct cpu_latency_stats {
	int32_t limit_us;   /**< the limit held while busy */
	uint64_t hold_ms;   /**< how long it is kept after the last request */
	int held;           /**< held now */
	uint64_t holds;     /**< times it was taken since the start */
};

/**
 * Opens @p path (CPU_LATENCY_DEVICE; tests give a file) for writing,
 * without holding anything yet. Call before the sandbox: the device is
 * root's and outside the front's paths.
 * @param limit_us  0..1000000
 * @param hold_ms   at least 1
 * @param out       set on success; cpu_latency_close() it
 * @return 0, or a negative errno (the open's; -EINVAL for bad arguments).
 */
int cpu_latency_open(uv_loop_t *loop, const char *path, int32_t limit_us, uint64_t hold_ms,
		     cpu_latency_t **out);

/**
 * The daemon now has @p inflight requests in (call when one comes in and
 * when one is answered). Takes the limit if it is not held; the release
 * comes hold_ms after the count was last seen at 0. NULL is a no-op.
 * @return 0, or a negative errno of the write (the limit is then not held;
 *         the next call tries again).
 */
int cpu_latency_note(cpu_latency_t *cl, uint64_t inflight);

void cpu_latency_stats_get(const cpu_latency_t *cl, struct cpu_latency_stats *st);

/** Releases the limit, closes the device and the timer (the memory is
 *  freed by the timer's close callback). NULL is a no-op. */
void cpu_latency_close(cpu_latency_t *cl);

#endif
