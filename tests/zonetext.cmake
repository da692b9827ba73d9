# zonesigner/zone_text.c: the zone file's presentation lines, held against ldns.
if(TARGET regsign-zone)
  regsign_add_test(test_zone_text
    SOURCES unit/test_zone_text.c unit/test_zone_support.c
    LIBS regsign-zone)
endif()
