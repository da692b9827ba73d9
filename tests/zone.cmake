# Tests of zonesigner/ (libregsign-zone). Owner: brief D.
if(TARGET regsign-zone)
  set(ZONE_TEST_SUPPORT ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_zone_support.c)
  regsign_add_test(test_zone_dnskey
    SOURCES unit/test_zone_dnskey.c ${ZONE_TEST_SUPPORT}
    LIBS regsign-zone)
endif()
