# libregsign-sandbox: user change, limits, Landlock and the seccomp allow-lists of
# regsignd's front and HSM processes, and the PKCS#11 module path allow-list
# (signer/sandbox.h). libseccomp comes from pkg-config (Debian: libseccomp-dev).
pkg_check_modules(SECCOMP REQUIRED IMPORTED_TARGET libseccomp)
add_library(regsign-sandbox STATIC
  ${CMAKE_CURRENT_LIST_DIR}/sandbox.c
  ${CMAKE_CURRENT_LIST_DIR}/sandbox_landlock.c
  ${CMAKE_CURRENT_LIST_DIR}/sandbox_seccomp.c)
target_link_libraries(regsign-sandbox PUBLIC PkgConfig::SECCOMP)
