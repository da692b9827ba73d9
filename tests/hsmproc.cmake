# Tests of the HSM process and its parts (signer/hsm*.c, signer/config.c). Owner: brief H.
regsign_add_test(test_hsmproto
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_hsmproto.c
  LIBS regsign-hsmproto TIMEOUT 60 LABELS hsmproc)

# test_hsmlimits also feeds the limits what the zone signer really produces.
if(TARGET regsign-hsmlimits AND TARGET regsign-zone
   AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_hsmlimits.c)
  regsign_add_test(test_hsmlimits
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_hsmlimits.c
            ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_hsm_support.c
    LIBS regsign-hsmlimits regsign-x509 regsign-zone PkgConfig::LDNS PkgConfig::OPENSSL
         PkgConfig::LIBUV
    TIMEOUT 60 LABELS hsmproc)
endif()

if(TARGET regsign-config AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_config.c)
  regsign_add_test(test_config
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_config.c
    LIBS regsign-config TIMEOUT 60 LABELS hsmproc)
endif()

# The HSM process end to end on SoftHSM, also behind the fault-injection module
# (target regsign-p11fault of tests/pkcs11.cmake, included after this file: CMake
# resolves the name when it generates).
if(TARGET regsign-hsmproc AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/fault/p11fault.c
   AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_hsmd.c)
  regsign_add_test(test_hsmd
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_hsmd.c
            ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_hsm_support.c
            ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_hsm_util.c
    LIBS regsign-hsmproc regsign-x509 PkgConfig::LIBUV PkgConfig::OPENSSL ${CMAKE_DL_LIBS}
    TIMEOUT 300 LABELS hsmproc)
  target_compile_definitions(test_hsmd PRIVATE
    P11FAULT_PATH="$<TARGET_FILE:regsign-p11fault>")
  add_dependencies(test_hsmd regsign-p11fault)
  # SoftHSM leaks what a simulated HSM restart interrupts (tests/fault/lsan-softhsm.supp);
  # the HSM processes this test starts inherit the setting.
  set_property(TEST test_hsmd APPEND PROPERTY ENVIRONMENT
    "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/fault/lsan-softhsm.supp:print_suppressions=0")
endif()

# libFuzzer target of the protocol decoders and the hard limits behind them. Only clang
# has libFuzzer; the code under test is compiled into the target so that it carries the
# coverage instrumentation.
if(CMAKE_C_COMPILER_ID MATCHES "Clang" AND TARGET regsign-x509
   AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_hsmproto.c)
  add_executable(fuzz_hsmproto ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_hsmproto.c
                 ${CMAKE_SOURCE_DIR}/signer/hsmproto.c ${CMAKE_SOURCE_DIR}/signer/hsmlimits.c)
  set_target_properties(fuzz_hsmproto PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin/fuzz)
  target_compile_options(fuzz_hsmproto PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(fuzz_hsmproto PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz_hsmproto PRIVATE regsign-x509 PkgConfig::LDNS PkgConfig::OPENSSL)
endif()
