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

# Both processes of regsignd lock themselves down: the HSM process in hsmd.c
# (regsign-hsmproc, signer/hsm.cmake) and the front in regsignd.c
# (signer/daemon.cmake). Both fragments sort before this one, so their
# targets exist here when they are built at all.
if(TARGET regsign-hsmproc AND TARGET regsign-config)
  target_link_libraries(regsign-hsmproc PUBLIC regsign-sandbox)
endif()
if(TARGET regsignd)
  target_link_libraries(regsignd PRIVATE regsign-sandbox)
endif()
