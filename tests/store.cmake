# Tests of signer/store and signer/audit (helper G).
if(TARGET regsign-store)
  regsign_add_test(test_store SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_store.c
    LIBS regsign-store PkgConfig::SQLITE TIMEOUT 120)
endif()

if(TARGET regsign-audit)
  set(_audit_util ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_audit_util.c)
  regsign_add_test(test_audit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_audit.c
    ${_audit_util} LIBS regsign-audit PkgConfig::OPENSSL TIMEOUT 120)
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_audit_record.c)
    regsign_add_test(test_audit_record
      SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_audit_record.c
      LIBS regsign-audit PkgConfig::OPENSSL TIMEOUT 120)
  endif()
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_audit_verify.c)
    regsign_add_test(test_audit_verify
      SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_audit_verify.c ${_audit_util}
      LIBS regsign-audit regsign-audit-cli PkgConfig::OPENSSL TIMEOUT 300)
  endif()
  # The real CLI binary (signer/proto.cmake links regsign-audit-cli into it).
  if(TARGET regsign AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_audit_cli.c)
    regsign_add_test(test_audit_cli
      SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_audit_cli.c ${_audit_util}
      LIBS regsign-audit PkgConfig::OPENSSL TIMEOUT 120)
    add_dependencies(test_audit_cli regsign)
  endif()
endif()

# libFuzzer target for the verifier: built with clang only, not run by ctest.
if(TARGET regsign-audit AND CMAKE_C_COMPILER_ID MATCHES "Clang"
   AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_audit.c)
  # The parser's sources are compiled into the target itself so that they
  # carry the fuzzer's coverage instrumentation.
  add_executable(fuzz_audit ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_audit.c
    ${CMAKE_SOURCE_DIR}/signer/audit_record.c ${CMAKE_SOURCE_DIR}/signer/audit_parse.c
    ${CMAKE_SOURCE_DIR}/signer/audit_verify.c)
  target_compile_options(fuzz_audit PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(fuzz_audit PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz_audit PRIVATE PkgConfig::OPENSSL)
  set_target_properties(fuzz_audit PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin/fuzz)
endif()
