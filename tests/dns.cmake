# Tests of the DNS listener (signer/dns_*, libregsign-dns, the wire-form transfers of
# signer/dns_wire* and zonesigner/zone_wire.c). Owners: brief J, then AXFR.
if(TARGET regsign-dns)
  set(DNS_TEST_SUPPORT ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_dns_support.c)

  # The tiny server the integration scripts start: a signed in-memory zone.
  add_executable(dns_testsrv ${CMAKE_CURRENT_SOURCE_DIR}/integration/dns_testsrv.c
                 ${DNS_TEST_SUPPORT})
  set_target_properties(dns_testsrv PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin/tests)
  target_link_libraries(dns_testsrv PRIVATE regsign-dns PkgConfig::OPENSSL)
endif()

if(TARGET regsign-dns)
  foreach(t acl tsig journal answer server fuzz xfr wire)
    regsign_add_test(test_dns_${t}
      SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_dns_${t}.c ${DNS_TEST_SUPPORT}
      LIBS regsign-dns Threads::Threads TIMEOUT 300 LABELS dns)
  endforeach()
endif()

if(TARGET dns_testsrv)
  regsign_add_script_test(dns_knot
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/dns_knot.sh
    TIMEOUT 600 LABELS dns)
  regsign_add_script_test(dns_nsd
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/dns_nsd.sh
    TIMEOUT 600 LABELS dns)
endif()

# AXFR served from the zone's wire data, through a real regsignd with knotd as
# its secondary (the e2e helper starts knotd). SoftHSM leaks by design at exit
# (tests/fault/lsan-softhsm.supp), as for the daemon's other integration tests.
find_package(Python3 COMPONENTS Interpreter)
if(TARGET regsignd AND Python3_Interpreter_FOUND)
  regsign_add_script_test(test_dns_axfr
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_dns_axfr.py
    TIMEOUT 600 LABELS dns)
  set_property(TEST test_dns_axfr APPEND PROPERTY ENVIRONMENT
    "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/fault/lsan-softhsm.supp:print_suppressions=0")
endif()
