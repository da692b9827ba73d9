# Tests of pkcs11/ (libregsign-hsm), the SoftHSM fixture and the fault module.
regsign_add_test(test_hsm_fixture SOURCES unit/test_hsm_fixture.c TIMEOUT 120)

# The fault-injection PKCS#11 module (tests/fault/README.md): forwards to
# SoftHSM unless P11FAULT_MODULE names another module.
add_library(regsign-p11fault MODULE fault/p11fault.c)
target_compile_definitions(regsign-p11fault PRIVATE
  P11FAULT_DEFAULT_MODULE="${REGSIGN_SOFTHSM_MODULE}")
target_include_directories(regsign-p11fault PRIVATE ${P11KIT_INCLUDE_DIRS})
target_link_libraries(regsign-p11fault PRIVATE Threads::Threads ${CMAKE_DL_LIBS})
# Never unloaded (dlclose is a no-op), so its call counters are totals since
# the process started even when a test opens and closes the module many times.
target_link_options(regsign-p11fault PRIVATE -Wl,-z,nodelete)

# Unit tests of libregsign-hsm. Each links the shared helpers and knows where
# the fault module is; each test case makes its own SoftHSM token.
function(regsign_hsm_test name)
  regsign_add_test(${name} SOURCES unit/${name}.c unit/test_hsm_util.c
                   LIBS regsign-hsm PkgConfig::OPENSSL ${CMAKE_DL_LIBS} ${ARGN})
  target_compile_definitions(${name} PRIVATE
    P11FAULT_PATH="$<TARGET_FILE:regsign-p11fault>")
  add_dependencies(${name} regsign-p11fault)
  # SoftHSM's own leaks (see the file) must not fail the sanitizer build.
  set_property(TEST ${name} APPEND PROPERTY ENVIRONMENT
    "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/fault/lsan-softhsm.supp:print_suppressions=0")
endfunction()
regsign_hsm_test(test_hsm TIMEOUT 300)
regsign_hsm_test(test_hsm_recover TIMEOUT 600)
regsign_hsm_test(test_hsm_threads TIMEOUT 300)
regsign_hsm_test(test_hsm_copy TIMEOUT 300)
regsign_hsm_test(test_hsm_ahead TIMEOUT 300)
regsign_add_test(test_hsm_uri SOURCES unit/test_hsm_uri.c LIBS regsign-hsm PkgConfig::OPENSSL
                 TIMEOUT 120)
