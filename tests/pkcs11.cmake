# Tests of pkcs11/ (libregsign-hsm), the SoftHSM fixture and the fault module.
regsign_add_test(test_hsm_fixture SOURCES unit/test_hsm_fixture.c TIMEOUT 120)
