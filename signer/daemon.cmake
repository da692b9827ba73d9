# regsignd: the daemon's front process (signing socket, requests under policy,
# group commit to the store, audit) and, with --hsm-process, the HSM process.
# The libraries it links are defined by other signer/*.cmake fragments that
# sort after this one; CMake resolves their names when it generates, so the
# check is on their sources being present.
set(REGSIGND_NEEDS
  ${CMAKE_CURRENT_LIST_DIR}/hsmlink.c ${CMAKE_CURRENT_LIST_DIR}/hsmd.c
  ${CMAKE_CURRENT_LIST_DIR}/audit.c ${CMAKE_CURRENT_LIST_DIR}/store.c
  ${CMAKE_CURRENT_LIST_DIR}/proto.c ${CMAKE_CURRENT_LIST_DIR}/x509.c)
set(REGSIGND_OK ON)
foreach(f ${REGSIGND_NEEDS})
  if(NOT EXISTS ${f})
    set(REGSIGND_OK OFF)
  endif()
endforeach()

if(REGSIGND_OK AND TARGET regsign-policy AND TARGET regsign-hsm AND
   EXISTS ${CMAKE_CURRENT_LIST_DIR}/zonepub_hsm.c AND EXISTS ${CMAKE_CURRENT_LIST_DIR}/dns_server.c)
  add_executable(regsignd
    ${CMAKE_CURRENT_LIST_DIR}/regsignd.c
    ${CMAKE_CURRENT_LIST_DIR}/server.c
    ${CMAKE_CURRENT_LIST_DIR}/server_read.c
    ${CMAKE_CURRENT_LIST_DIR}/server_reply.c
    ${CMAKE_CURRENT_LIST_DIR}/commit.c
    ${CMAKE_CURRENT_LIST_DIR}/ops_ctx.c
    ${CMAKE_CURRENT_LIST_DIR}/cpu_latency.c
    ${CMAKE_CURRENT_LIST_DIR}/ops_dispatch.c
    ${CMAKE_CURRENT_LIST_DIR}/ops_policy.c
    ${CMAKE_CURRENT_LIST_DIR}/ops_issue.c
    ${CMAKE_CURRENT_LIST_DIR}/ops_issue_store.c
    ${CMAKE_CURRENT_LIST_DIR}/ops_revoke.c
    ${CMAKE_CURRENT_LIST_DIR}/ops_crl.c
    ${CMAKE_CURRENT_LIST_DIR}/ops_info.c
    ${CMAKE_CURRENT_LIST_DIR}/ops_import.c
    ${CMAKE_CURRENT_LIST_DIR}/ops_import_commit.c
    ${CMAKE_CURRENT_LIST_DIR}/ops_life.c
    ${CMAKE_CURRENT_LIST_DIR}/ops_reload.c
    ${CMAKE_CURRENT_LIST_DIR}/ops_audit.c
    ${CMAKE_CURRENT_LIST_DIR}/ops_zone.c
    ${CMAKE_CURRENT_LIST_DIR}/ops_zone_ns.c
    ${CMAKE_CURRENT_LIST_DIR}/ops_zone_dns.c
    ${CMAKE_CURRENT_LIST_DIR}/ops_zone_info.c
    ${CMAKE_CURRENT_LIST_DIR}/ops_publish.c
    ${CMAKE_CURRENT_LIST_DIR}/ops_signrrset.c)
  # The zone (zonepub, its HSM signer) and the DNS listener are linked in too.
  target_link_libraries(regsignd PRIVATE regsign-zonepub-hsm regsign-zonepub regsign-dns
    regsign-hsmproc regsign-config regsign-audit
    regsign-store regsign-x509 regsign-proto regsign-policy regsign-hsm
    PkgConfig::LDNS PkgConfig::LIBUV PkgConfig::OPENSSL Threads::Threads)
endif()
