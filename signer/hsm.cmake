# The HSM process (hsmd), its internal protocol codec (hsmproto), the per-role hard
# limits it enforces (hsmlimits), the front process's link to it (hsmlink), and the
# daemon configuration regsignd.yaml (config). Each library joins the build once the
# libraries it needs exist, so this file stays valid while other parts are written.
add_library(regsign-hsmproto STATIC ${CMAKE_CURRENT_LIST_DIR}/hsmproto.c)

if(TARGET regsign-policy)
  add_library(regsign-config STATIC ${CMAKE_CURRENT_LIST_DIR}/config.c
              ${CMAKE_CURRENT_LIST_DIR}/config_sandbox.c ${CMAKE_CURRENT_LIST_DIR}/config_dns.c)
  target_link_libraries(regsign-config PUBLIC regsign-policy PkgConfig::P11KIT)
endif()

# regsign-x509 is defined by signer/x509.cmake, which is included after this file;
# CMake resolves the name when it generates, so checking for its source is enough.
if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/x509.cmake)
  add_library(regsign-hsmlimits STATIC ${CMAKE_CURRENT_LIST_DIR}/hsmlimits.c)
  target_link_libraries(regsign-hsmlimits PUBLIC regsign-hsmproto regsign-x509
                        PkgConfig::LDNS PkgConfig::OPENSSL)
endif()

if(TARGET regsign-config AND TARGET regsign-hsmlimits AND TARGET regsign-hsm
   AND EXISTS ${CMAKE_CURRENT_LIST_DIR}/hsmlink.c)
  add_library(regsign-hsmproc STATIC
    ${CMAKE_CURRENT_LIST_DIR}/hsmd.c
    ${CMAKE_CURRENT_LIST_DIR}/hsmd_setup.c
    ${CMAKE_CURRENT_LIST_DIR}/hsmd_watchdog.c
    ${CMAKE_CURRENT_LIST_DIR}/hsmlink.c
    ${CMAKE_CURRENT_LIST_DIR}/hsmlink_proc.c)
  target_link_libraries(regsign-hsmproc PUBLIC regsign-hsmlimits regsign-hsmproto
                        regsign-config regsign-hsm PkgConfig::LIBUV PkgConfig::OPENSSL
                        Threads::Threads)
endif()
