# Tests of the NSEC proofs in regsignd's negative answers (brief NSEC):
# zone_lookup_denial() against ldns's canonical order and the listener's
# answers (unit), unbound and delv validating against regsignd's listener
# directly (e2e), and a randomised ISSUE/REVOKE/REISSUE/PUBLISH run checked
# through AXFR and IXFR (integration). A missing tool fails; nothing skips.
if(TARGET regsign-dns)
  regsign_add_test(test_zone_lookup
    SOURCES unit/test_zone_lookup.c unit/test_zone_support.c
    LIBS regsign-dns regsign-zone TIMEOUT 300 LABELS nsec)
endif()

find_package(Python3 COMPONENTS Interpreter)
if(TARGET regsignd AND TARGET regsign AND TARGET regsign-ceremony)
  regsign_add_script_test(e2e_unbound_direct
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/e2e/e2e_unbound_direct.sh
    TIMEOUT 600 LABELS "nsec;e2e")
  # SoftHSM leaks by design at exit (tests/fault/lsan-softhsm.supp).
  set_property(TEST e2e_unbound_direct APPEND PROPERTY ENVIRONMENT
    "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/fault/lsan-softhsm.supp:print_suppressions=0")
endif()
if(TARGET regsignd AND Python3_Interpreter_FOUND)
  regsign_add_script_test(test_daemon_nsec_property
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_daemon_nsec_property.py
    TIMEOUT 600 LABELS "nsec;daemon")
  set_property(TEST test_daemon_nsec_property APPEND PROPERTY ENVIRONMENT
    "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/fault/lsan-softhsm.supp:print_suppressions=0")
endif()
