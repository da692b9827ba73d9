# signer/store: regsignd's SQLite state (certificates, CRL, metadata, audit
# rows, zone tables). signer/audit: the tamper-evident audit log on top of it,
# its record codec and the offline verifier; cli_audit is the body of the
# `regsign audit` subcommand (linked into the CLI by signer/proto.cmake).
# store_import.c: rows of a bulk import (IMPORT); it hashes with libcrypto.
add_library(regsign-store STATIC ${CMAKE_CURRENT_LIST_DIR}/store.c
  ${CMAKE_CURRENT_LIST_DIR}/store_cert.c ${CMAKE_CURRENT_LIST_DIR}/store_rows.c
  ${CMAKE_CURRENT_LIST_DIR}/store_import.c ${CMAKE_CURRENT_LIST_DIR}/store_ckpt.c
  ${CMAKE_CURRENT_LIST_DIR}/store_read.c)
target_link_libraries(regsign-store PUBLIC PkgConfig::SQLITE PkgConfig::OPENSSL)

if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/audit.c)
  add_library(regsign-audit STATIC
    ${CMAKE_CURRENT_LIST_DIR}/audit_record.c
    ${CMAKE_CURRENT_LIST_DIR}/audit_parse.c
    ${CMAKE_CURRENT_LIST_DIR}/audit.c
    ${CMAKE_CURRENT_LIST_DIR}/audit_export.c
    ${CMAKE_CURRENT_LIST_DIR}/audit_verify.c)
  target_link_libraries(regsign-audit PUBLIC regsign-store PkgConfig::OPENSSL)

  add_library(regsign-audit-cli STATIC ${CMAKE_CURRENT_LIST_DIR}/cli_audit.c)
  target_link_libraries(regsign-audit-cli PUBLIC regsign-audit)
endif()
