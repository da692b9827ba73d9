# The benchmark suite (bench/, owner: brief K). Benchmarks are not unit tests:
# CI runs only the smoke mode (tiny sizes, about a second per measurement) to
# keep the harness working. It checks the load generator against a fake
# daemon, signs a small zone through the bulk path with token keys (verified
# by ldns-verify-zone), runs the peers, measures regsignd when it is built,
# and checks that results.json has every expected key (bench/report.py).
# A missing tool (SoftHSM, Knot, BIND, ldns, the pkcs11 engine) fails it.
if(TARGET regsign AND TARGET regsign-ceremony AND TARGET regsign-zone AND TARGET regsign-hsm)
  regsign_add_script_test(bench_smoke
    COMMAND ${CMAKE_SOURCE_DIR}/bench/smoke.sh ${CMAKE_CURRENT_BINARY_DIR}/bench-smoke
    TIMEOUT 900 LABELS bench)
  # SoftHSM leaks by design at exit (tests/fault/lsan-softhsm.supp).
  set_property(TEST bench_smoke APPEND PROPERTY ENVIRONMENT
    "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/fault/lsan-softhsm.supp:print_suppressions=0")
  # Its daemons hold a CPU latency limit (bench/run.sh --cpu-latency on), which
  # test_daemon_cpu_latency reads back.
  set_property(TEST bench_smoke APPEND PROPERTY RESOURCE_LOCK cpu_dma_latency)
endif()

# bench/report.py's reading of R's two samples and the ratio's range when
# they disagree (pure Python; no SoftHSM).
find_package(Python3 REQUIRED COMPONENTS Interpreter)
regsign_add_script_test(test_bench_report
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/python/test_bench_report.py
  TIMEOUT 60 LABELS bench)
