# Tests of libregsign-x509 (signer/x509*.c, signer/csr.c). Owner: brief B.
# test_x509 runs the real tools (openssl, certtool); a missing one fails it.
if(TARGET regsign-x509)
  regsign_add_test(test_x509
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_x509.c
    LIBS regsign-x509 PkgConfig::OPENSSL TIMEOUT 120 LABELS x509)
  regsign_add_test(test_csr
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_csr.c
    LIBS regsign-x509 PkgConfig::OPENSSL TIMEOUT 120 LABELS x509)
endif()
