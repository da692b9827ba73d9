# IMPORT, the bulk import of device records (signer/ops_import.c,
# signer/store_import.c, `regsign import`): one integration program on a real
# regsignd and a SoftHSM token (tests/integration/test_daemon_import.py).
find_package(Python3 COMPONENTS Interpreter)
if(TARGET regsignd AND TARGET regsign AND Python3_Interpreter_FOUND)
  regsign_add_script_test(test_daemon_import
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_daemon_import.py
    TIMEOUT 900 LABELS daemon)
  # Known bug (not in IMPORT's files): a revoked hash-only record still gets a
  # CRL entry (its synthetic serial) and REVOKE answers with that serial.
  # Fixed by leaving store_import_serial_is_synthetic() serials out of the CRL
  # (signer/ops_crl.c, collect()) and out of the REVOKE reply (signer/ops_revoke.c).
  regsign_add_script_test(test_daemon_import_crl
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_daemon_import.py
            --crl-hash-only
    TIMEOUT 300 LABELS daemon known-bug)
  set_tests_properties(test_daemon_import_crl PROPERTIES DISABLED TRUE)
  foreach(t test_daemon_import test_daemon_import_crl)
    # SoftHSM leaks by design at exit (see tests/fault/lsan-softhsm.supp).
    set_property(TEST ${t} APPEND PROPERTY ENVIRONMENT
      "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/fault/lsan-softhsm.supp:print_suppressions=0")
  endforeach()
endif()
