# zonesigner/zone_text.c: the zone file's presentation lines, held against ldns.
if(TARGET regsign-zone)
  regsign_add_test(test_zone_text
    SOURCES unit/test_zone_text.c unit/test_zone_support.c
    LIBS regsign-zone)
endif()

# zonesigner/zone_rows.c: the zone file streamed from stored rows equals
# zone_file_write()'s, passes ldns-verify-zone, and names a bad row.
if(TARGET regsign-zone)
  regsign_add_test(test_zone_file_rows
    SOURCES unit/test_zone_file_rows.c unit/test_zone_support.c
    LIBS regsign-zone
    TIMEOUT 300)
endif()
