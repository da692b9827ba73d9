# Tests of the NSEC proofs in regsignd's negative answers (brief NSEC):
# zone_lookup_denial() against ldns's canonical order and the listener's
# answers (unit), unbound validating against regsignd directly (e2e), and a
# randomised ISSUE/REVOKE/REISSUE run checked through AXFR/IXFR (integration).
if(TARGET regsign-dns)
  regsign_add_test(test_zone_lookup
    SOURCES unit/test_zone_lookup.c unit/test_zone_support.c
    LIBS regsign-dns regsign-zone TIMEOUT 300 LABELS nsec)
endif()
