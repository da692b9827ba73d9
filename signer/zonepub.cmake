# libregsign-zonepub: the registry zone inside regsignd (groups of changes in
# one serial, signed through an asynchronous signer, committed through the
# group-commit pipeline of signer/commit.h, then published to the DNS
# listener). commit_submit() comes from signer/commit.c, which the daemon
# compiles in (and the tests with it).
if(TARGET regsign-zone AND TARGET regsign-store)
  add_library(regsign-zonepub STATIC
    ${CMAKE_CURRENT_LIST_DIR}/zonepub.c
    ${CMAKE_CURRENT_LIST_DIR}/zonepub_job.c
    ${CMAKE_CURRENT_LIST_DIR}/zonepub_publish.c
    ${CMAKE_CURRENT_LIST_DIR}/zonepub_sched.c
    ${CMAKE_CURRENT_LIST_DIR}/zonepub_store.c
    ${CMAKE_CURRENT_LIST_DIR}/zonepub_aux.c
    ${CMAKE_CURRENT_LIST_DIR}/zonepub_file.c)
  target_link_libraries(regsign-zonepub PUBLIC regsign-zone regsign-store PkgConfig::LIBUV
                        PkgConfig::OPENSSL Threads::Threads)
endif()

# zonepub's signer and DNSKEYs through the HSM process (signer/hsmlink.h),
# and its parameters from the policy: the daemon's glue.
if(TARGET regsign-zonepub AND TARGET regsign-hsmproc AND TARGET regsign-policy)
  add_library(regsign-zonepub-hsm STATIC ${CMAKE_CURRENT_LIST_DIR}/zonepub_hsm.c)
  target_link_libraries(regsign-zonepub-hsm PUBLIC regsign-zonepub regsign-hsmproc
                        regsign-policy)
endif()
