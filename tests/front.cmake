# Tests of the front's request path (session 3, FRONT): the audit log's open
# intents kept without a table in the store.
if(TARGET regsign-audit AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_audit_open.c)
  regsign_add_test(test_audit_open
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_audit_open.c
    ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_audit_util.c
    LIBS regsign-audit PkgConfig::OPENSSL TIMEOUT 120)
endif()
if(TARGET regsign-store AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_store_batch.c)
  regsign_add_test(test_store_batch
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_store_batch.c
    LIBS regsign-store PkgConfig::SQLITE TIMEOUT 120)
endif()
