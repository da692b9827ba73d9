# IMPORT, the bulk import of device records (signer/ops_import.c,
# signer/store_import.c, `regsign import`): one integration program on a real
# regsignd and a SoftHSM token (tests/integration/test_daemon_import.py).
find_package(Python3 COMPONENTS Interpreter)
if(TARGET regsignd AND TARGET regsign AND Python3_Interpreter_FOUND)
  regsign_add_script_test(test_daemon_import
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_daemon_import.py
    TIMEOUT 900 LABELS daemon)
  # A revoked hash-only record removes its name but adds no CRL entry, and
  # the REVOKE reply names no certificate serial (ops_crl.c, ops_revoke.c).
  regsign_add_script_test(test_daemon_import_crl
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_daemon_import.py
            --crl-hash-only
    TIMEOUT 300 LABELS daemon)
  foreach(t test_daemon_import test_daemon_import_crl)
    # SoftHSM leaks by design at exit (see tests/fault/lsan-softhsm.supp).
    set_property(TEST ${t} APPEND PROPERTY ENVIRONMENT
      "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/fault/lsan-softhsm.supp:print_suppressions=0")
  endforeach()
endif()
