# libregsign-x509: TBS building, external-signature assembly, CRLs, CSR
# checks and TBS inspection. Depends on OpenSSL only (no other regsign code),
# so both the daemon and the key-ceremony tool can link it.
add_library(regsign-x509 STATIC
  ${CMAKE_CURRENT_LIST_DIR}/x509.c
  ${CMAKE_CURRENT_LIST_DIR}/x509_asn1.c
  ${CMAKE_CURRENT_LIST_DIR}/x509_cert.c
  ${CMAKE_CURRENT_LIST_DIR}/x509_crl.c
  ${CMAKE_CURRENT_LIST_DIR}/x509_sig.c
  ${CMAKE_CURRENT_LIST_DIR}/x509_check.c
  ${CMAKE_CURRENT_LIST_DIR}/x509_verifier.c
  ${CMAKE_CURRENT_LIST_DIR}/csr.c)
target_link_libraries(regsign-x509 PUBLIC PkgConfig::OPENSSL)
