# Tests of the HSM process and its parts (signer/hsm*.c, signer/config.c). Owner: brief H.
regsign_add_test(test_hsmproto
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_hsmproto.c
  LIBS regsign-hsmproto TIMEOUT 60 LABELS hsmproc)

# test_hsmlimits also feeds the limits what the zone signer really produces.
if(TARGET regsign-hsmlimits AND TARGET regsign-zone
   AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_hsmlimits.c)
  regsign_add_test(test_hsmlimits
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_hsmlimits.c
    LIBS regsign-hsmlimits regsign-x509 regsign-zone PkgConfig::LDNS PkgConfig::OPENSSL
    TIMEOUT 60 LABELS hsmproc)
endif()

if(TARGET regsign-config AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_config.c)
  regsign_add_test(test_config
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_config.c
    LIBS regsign-config TIMEOUT 60 LABELS hsmproc)
endif()

if(TARGET regsign-hsmproc AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_hsmd.c)
  regsign_add_test(test_hsmd
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_hsmd.c
    LIBS regsign-hsmproc regsign-x509 PkgConfig::LIBUV PkgConfig::OPENSSL
    TIMEOUT 300 LABELS hsmproc)
endif()

# libFuzzer target of the protocol decoders. Only clang has libFuzzer; the codec is
# compiled into the target so that it carries the coverage instrumentation.
if(CMAKE_C_COMPILER_ID MATCHES "Clang" AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_hsmproto.c)
  add_executable(fuzz_hsmproto ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_hsmproto.c
                 ${CMAKE_SOURCE_DIR}/signer/hsmproto.c)
  set_target_properties(fuzz_hsmproto PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin/fuzz)
  target_compile_options(fuzz_hsmproto PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(fuzz_hsmproto PRIVATE -fsanitize=fuzzer,address,undefined)
endif()
