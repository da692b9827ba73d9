# Tests of zonesigner/ (libregsign-zone). Owner: brief D.
if(TARGET regsign-zone)
  set(ZONE_TEST_SUPPORT ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_zone_support.c)
  foreach(t dnskey change name random time bulk fuzz tree)
    regsign_add_test(test_zone_${t}
      SOURCES unit/test_zone_${t}.c ${ZONE_TEST_SUPPORT}
      LIBS regsign-zone)
  endforeach()
endif()

# libFuzzer target of the zone's input parsers (stored rows, journal diffs).
# Only clang has -fsanitize=fuzzer; the zone sources are compiled in so that
# they carry the coverage instrumentation. Not registered with ctest (run it
# by hand: fuzz_zone -max_total_time=60); test_zone_fuzz is the CI version.
if(CMAKE_C_COMPILER_ID MATCHES "Clang" AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_zone.c)
  file(GLOB ZONE_FUZZ_SOURCES ${CMAKE_SOURCE_DIR}/zonesigner/*.c)
  add_executable(fuzz_zone ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_zone.c ${ZONE_FUZZ_SOURCES})
  target_link_libraries(fuzz_zone PRIVATE PkgConfig::LDNS PkgConfig::OPENSSL)
  target_compile_options(fuzz_zone PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(fuzz_zone PRIVATE -fsanitize=fuzzer,address,undefined)
  set_target_properties(fuzz_zone PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin/fuzz)
endif()
