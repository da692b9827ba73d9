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

# Session 4 (FRONT): the request path formats a decision's texts only where a
# record uses them; the audit records of allows and refusals keep their exact
# rule and detail (tests/integration/test_front_audit.py on a real regsignd).
find_package(Python3 COMPONENTS Interpreter)
if(TARGET regsignd AND Python3_Interpreter_FOUND AND
   EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_front_audit.py)
  regsign_add_script_test(test_front_audit
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_front_audit.py
    TIMEOUT 600 LABELS daemon)
  set_property(TEST test_front_audit APPEND PROPERTY ENVIRONMENT
    "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/fault/lsan-softhsm.supp:print_suppressions=0")
endif()
