# Tests of signer/zonepub (brief M): a real store in a temporary directory,
# the real commit pipeline (signer/commit.c compiled in, as the daemon does),
# an asynchronous in-memory signer and a libuv loop. test_zone_support.c
# (brief D's helpers) provides the OpenSSL keys and the zone text.
# A zonepub test on the in-memory fixture (test_zonepub_fx.c): its source, the
# fixture, test_zone_support.c and commit.c, plus any extra libraries.
function(regsign_zonepub_test name)
  regsign_add_test(${name}
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/${name}.c
            ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_zonepub_fx.c
            ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_zone_support.c
            ${CMAKE_SOURCE_DIR}/signer/commit.c
    LIBS regsign-zonepub ${ARGN} regsign-zone regsign-store PkgConfig::LIBUV
         PkgConfig::OPENSSL Threads::Threads
    TIMEOUT 300)
  target_include_directories(${name} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/unit)
endfunction()

if(TARGET regsign-zonepub)
  regsign_zonepub_test(test_zonepub)
endif()

# zonepub signing through the real HSM process on a SoftHSM token.
if(TARGET regsign-zonepub-hsm AND TARGET regsign-x509
   AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_zonepub_hsm.c)
  regsign_add_test(test_zonepub_hsm
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_zonepub_hsm.c
            ${CMAKE_SOURCE_DIR}/signer/commit.c
    LIBS regsign-zonepub-hsm regsign-x509 regsign-hsm PkgConfig::LIBUV PkgConfig::OPENSSL
    TIMEOUT 300)
endif()

# zonepub with the DNS listener's responder reading its zone and journal.
if(TARGET regsign-zonepub AND TARGET regsign-dns
   AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_zonepub_dns.c)
  regsign_zonepub_test(test_zonepub_dns regsign-dns)
endif()

# The zone file on its own thread from a read transaction on the store: equal
# to zone_file_write() of the same serial, changes publish while the writer is
# held, coalescing, the last write at close, a bad row named.
if(TARGET regsign-zonepub)
  regsign_zonepub_test(test_zonepub_file)
endif()
