# Tests of the background verification of the zone's signatures
# (zone_verify_slice, zone_verify_mark_due). Owner: brief VERIFY.
if(TARGET regsign-zone AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_zone_verify.c)
  regsign_add_test(test_zone_verify
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_zone_verify.c
            ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_zone_support.c
    LIBS regsign-zone)
endif()

# The same through the real daemon: a signature spoilt in the state database
# while regsignd is stopped is served after the start (a load verifies
# nothing), found by the background pass, re-signed, stored, and the zone
# file then passes ldns-verify-zone and dnssec-verify.
find_package(Python3 COMPONENTS Interpreter)
if(TARGET regsignd AND Python3_Interpreter_FOUND
   AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_daemon_verify_repair.py)
  regsign_add_script_test(test_daemon_verify_repair
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_daemon_verify_repair.py
    TIMEOUT 600 LABELS daemon)
  set_property(TEST test_daemon_verify_repair APPEND PROPERTY ENVIRONMENT
    "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/fault/lsan-softhsm.supp:print_suppressions=0")
endif()
