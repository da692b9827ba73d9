# libregsign-dns: regsignd's DNS listener as a hidden primary (queries, AXFR,
# IXFR from the journal, NOTIFY, allow-list and TSIG). Runs on the front
# process's libuv loop; reads the zone of libregsign-zone.
if(TARGET regsign-zone)
  set(REGSIGN_DNS_SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/dns_err.c
    ${CMAKE_CURRENT_LIST_DIR}/dns_acl.c
    ${CMAKE_CURRENT_LIST_DIR}/dns_tsig.c
    ${CMAKE_CURRENT_LIST_DIR}/dns_journal.c
    ${CMAKE_CURRENT_LIST_DIR}/dns_netdiff.c
    ${CMAKE_CURRENT_LIST_DIR}/dns_wire.c
    ${CMAKE_CURRENT_LIST_DIR}/dns_wire_tsig.c
    ${CMAKE_CURRENT_LIST_DIR}/dns_wire_xfr.c
    ${CMAKE_CURRENT_LIST_DIR}/dns_xfr.c
    ${CMAKE_CURRENT_LIST_DIR}/dns_answer.c)
  foreach(part dns_server.c dns_notify.c)
    if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/${part})
      list(APPEND REGSIGN_DNS_SOURCES ${CMAKE_CURRENT_LIST_DIR}/${part})
    endif()
  endforeach()
  add_library(regsign-dns STATIC ${REGSIGN_DNS_SOURCES})
  target_link_libraries(regsign-dns PUBLIC regsign-zone PkgConfig::LDNS PkgConfig::LIBUV
                        PkgConfig::OPENSSL)
endif()
