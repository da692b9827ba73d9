# Tests of zonesigner/ (libregsign-zone). Owner: brief D.
if(TARGET regsign-zone)
  set(ZONE_TEST_SUPPORT ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_zone_support.c)
  foreach(t dnskey change name random time bulk)
    regsign_add_test(test_zone_${t}
      SOURCES unit/test_zone_${t}.c ${ZONE_TEST_SUPPORT}
      LIBS regsign-zone)
  endforeach()
endif()
