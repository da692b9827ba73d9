# End-to-end test with real DNS software (owner: brief N2): regsignd on a fresh
# development setup, knotd as its secondary, unbound validating with only the
# ceremony's DS as trust anchor (tests/e2e/e2e_unbound.sh). A missing knotd or
# unbound fails the test; it is never skipped.
if(TARGET regsignd AND TARGET regsign AND TARGET regsign-ceremony)
  regsign_add_script_test(e2e_unbound
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/e2e/e2e_unbound.sh
    TIMEOUT 900 LABELS e2e)
  # The HSM process and the ceremony load SoftHSM, which leaks by design at
  # exit (tests/fault/lsan-softhsm.supp); the sanitizer build must not count it.
  set_property(TEST e2e_unbound APPEND PROPERTY ENVIRONMENT
    "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/fault/lsan-softhsm.supp:print_suppressions=0")
endif()

# The README's first command (scripts/demo.sh) twice on one setup, with the
# programs of this build (tests/e2e/demo_twice.sh).
if(TARGET regsignd AND TARGET regsign AND TARGET regsign-ceremony)
  regsign_add_script_test(e2e_demo_twice
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/e2e/demo_twice.sh
    TIMEOUT 900 LABELS e2e)
  set_property(TEST e2e_demo_twice APPEND PROPERTY ENVIRONMENT
    "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/fault/lsan-softhsm.supp:print_suppressions=0")
endif()
