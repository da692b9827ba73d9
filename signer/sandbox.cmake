# libregsign-sandbox: user change, limits, Landlock and the seccomp allow-lists of
# regsignd's front and HSM processes, and the PKCS#11 module path allow-list
# (signer/sandbox.h). libseccomp comes from pkg-config (Debian: libseccomp-dev).
# sandbox_config.c (the paths a configuration needs) joins when libregsign-config
# exists: signer/hsm.cmake, which defines it, is included before this file.
pkg_check_modules(SECCOMP REQUIRED IMPORTED_TARGET libseccomp)
set(REGSIGN_SANDBOX_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/sandbox.c
  ${CMAKE_CURRENT_LIST_DIR}/sandbox_landlock.c
  ${CMAKE_CURRENT_LIST_DIR}/sandbox_seccomp.c)
if(TARGET regsign-config)
  list(APPEND REGSIGN_SANDBOX_SOURCES ${CMAKE_CURRENT_LIST_DIR}/sandbox_config.c)
endif()
add_library(regsign-sandbox STATIC ${REGSIGN_SANDBOX_SOURCES})
target_link_libraries(regsign-sandbox PUBLIC PkgConfig::SECCOMP)
if(TARGET regsign-config)
  target_link_libraries(regsign-sandbox PUBLIC regsign-config)
endif()
