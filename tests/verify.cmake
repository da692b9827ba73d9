# Tests of the background verification of the zone's signatures
# (zone_verify_slice, zone_verify_mark_due). Owner: brief VERIFY.
if(TARGET regsign-zone AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_zone_verify.c)
  regsign_add_test(test_zone_verify
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_zone_verify.c
            ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_zone_support.c
    LIBS regsign-zone)
endif()
