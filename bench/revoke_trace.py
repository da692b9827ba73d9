#!/usr/bin/env python3
"""bench/revoke_trace.py: where one REVOKE's time goes, stage by stage.

    bench/revoke_trace.py REGSIGND.LOG... [N]

regsignd writes a stage trace when its log level is debug (config
`log.level: debug`; at info and above it costs one flag test per item):
a `trace revoke` line per revocation (intent queued, writer run, COMMIT,
durable, back on the loop, reply written), a `trace zone` line per zone
version (handed to the zone thread, back, change commit, durable, replay on
the served zone, NOTIFY) and a `trace hsm` line per signing batch (sent,
answered). This joins them on the serial and prints p50/p90/p99/max/mean per
stage in microseconds; with N, also the N slowest revocations' stages over
0.3 ms. At 100/s versions overlap and a `trace hsm` line may belong to a
neighbouring serial, so the HSM/zone-thread split is exact only for
revocations sent one at a time.

A revocation with early=1 handed its zone change to the zone thread beside
its INTENT (the zone's t0 precedes the INTENT's commit); its stages then
read "zone handed (from start)" and "gate: intent done->hsm sent" (the HSM
asked once the INTENT is durable) instead of the two sequential ones.
"""
import re, sys, statistics
def kv(line):
    return {k: int(v) for k, v in re.findall(r'(\w+)=(\d+)', line)}
files = [a for a in sys.argv[1:] if not a.isdigit()]
top = [int(a) for a in sys.argv[1:] if a.isdigit()]
joined = []   # (revoke, zone, hsm), joined by serial within each log
for fn in files:
    rev, zone, hsm = [], {}, {}
    for line in open(fn, errors='replace'):
        if 'trace revoke' in line: rev.append(kv(line))
        elif 'trace zone' in line:
            d = kv(line); zone[d['serial']] = d
        elif 'trace hsm' in line:
            d = kv(line); hsm[d['serial']] = d
    # Refusals, repeats and revocations in the store alone name the serial
    # served then, not one of their own (published=0): no zone stages.
    joined += [(r, zone.get(r['serial']), hsm.get(r['serial'])) for r in rev
               if r.get('published', 1)]
rev = [j[0] for j in joined]
rows = []
for r, z, h in joined:
    if not z or not h: continue
    zt0 = z['t0'] - r['t0']          # zone job handed, relative to revoke start (us)
    def Z(k): return zt0 + z[k]
    st = {}
    st['queue->intent submit'] = r['isub']
    st['intent: submit->writer run'] = r['irun'] - r['isub']
    st['intent: sqlite run'] = r['icommit'] - r['irun']
    st['intent: commit(fsync)'] = r['idurable'] - r['icommit']
    st['intent: durable->loop done'] = r['idone'] - r['idurable']
    if r.get('early'):
        st['zone handed (from start)'] = zt0
        st['gate: intent done->hsm sent'] = (h['sent'] - r['t0']) - r['idone']
    else:
        st['loop: intent done->zone handed'] = zt0 - r['idone']
        st['zone thread: handed->hsm sent'] = (h['sent'] - z['t0'])
    st['hsm: sent->answered'] = h['answered'] - h['sent']
    if z.get('woke') and z.get('built'):
        # the hop to the zone thread, its work after signing, the hop back
        st['loop->zone thread woke'] = z['woke'] - (h['answered'] - z['t0'])
        st['zone thread: after signing'] = z['built'] - z['woke']
        st['zone thread->loop'] = z['back'] - z['built']
    else:
        st['zone thread: answered->back on loop'] = z['back'] - (h['answered'] - z['t0'])
    st['change: back->writer run'] = z['crun'] - z['back']
    st['change: sqlite run'] = z['ccommit'] - z['crun']
    st['change: commit(fsync)'] = z['cdurable'] - z['ccommit']
    st['change: durable->loop done'] = z['cdone'] - z['cdurable']
    st['replay on served zone'] = z['replayed'] - z['cdone']
    if 'notified' in z and z.get('replied', 0) <= z['notified'] and r['replied'] <= Z('notified'):
        # new order: replies first, then NOTIFY
        st['reply written'] = r['replied'] - Z('replayed')
        st['(after reply) NOTIFY'] = z['notified'] - z['replied']
    else:
        st['NOTIFY (published cb)'] = z['notified'] - z['replayed']
        st['reply written'] = r['replied'] - Z('notified')
    st['TOTAL'] = r['replied']
    rows.append(st)
print(f"{len(rows)} revocations traced (of {len(rev)})")
def pct(v, p):
    v = sorted(v); return v[min(len(v)-1, int(round(p/100*(len(v)-1))))]
print(f"{'stage':40s} {'p50':>8s} {'p90':>8s} {'p99':>8s} {'max':>8s} {'mean':>8s}  (us)")
keys = []
for x in rows:
    keys += [k for k in x if k not in keys]
keys = [k for k in keys if k != 'TOTAL'] + (['TOTAL'] if rows else [])
for k in keys:
    v = [x[k] for x in rows if k in x]
    print(f"{k:40s} {pct(v,50):8d} {pct(v,90):8d} {pct(v,99):8d} {max(v):8d} {statistics.mean(v):8.0f}")
if rows and top:
    # The slowest revocations, stage by stage.
    for x in sorted(rows, key=lambda x: -x['TOTAL'])[:top[0]]:
        print(' '.join(f"{k.split(':')[-1].strip()[:14]}={v}" for k, v in x.items() if v > 300))
