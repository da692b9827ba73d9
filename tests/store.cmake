# Tests of signer/store and signer/audit (helper G).
if(TARGET regsign-store)
  regsign_add_test(test_store SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_store.c
    LIBS regsign-store PkgConfig::SQLITE TIMEOUT 120)
endif()
