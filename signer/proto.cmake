# Signing-socket protocol (docs/PROTOCOL.md): the codec shared by regsignd and
# its clients, the client library, and the regsign CLI.

# buf (bounded reader / growable writer) + proto (frame codec). Position
# independent so the shared client library can include it.
add_library(regsign-proto STATIC
  ${CMAKE_CURRENT_LIST_DIR}/buf.c
  ${CMAKE_CURRENT_LIST_DIR}/json.c
  ${CMAKE_CURRENT_LIST_DIR}/proto.c)
set_target_properties(regsign-proto PROPERTIES POSITION_INDEPENDENT_CODE ON)

# libregsign-client for front ends (signer/client.h). The static library is
# what our own programs link; the shared one, for C front ends, exports only
# the public regsign_* API.
add_library(regsign-client STATIC ${CMAKE_CURRENT_LIST_DIR}/client.c
            ${CMAKE_CURRENT_LIST_DIR}/client_msg.c)
target_link_libraries(regsign-client PUBLIC regsign-proto)

file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/regsign-client.map
  "{ global: regsign_*; local: *; };\n")
add_library(regsign-client-shared SHARED
  ${CMAKE_CURRENT_LIST_DIR}/client.c
  ${CMAKE_CURRENT_LIST_DIR}/client_msg.c
  ${CMAKE_CURRENT_LIST_DIR}/buf.c
  ${CMAKE_CURRENT_LIST_DIR}/proto.c)
set_target_properties(regsign-client-shared PROPERTIES
  OUTPUT_NAME regsign-client VERSION ${PROJECT_VERSION} SOVERSION 0
  LINK_DEPENDS ${CMAKE_CURRENT_BINARY_DIR}/regsign-client.map)
target_link_options(regsign-client-shared PRIVATE
  -Wl,--version-script=${CMAKE_CURRENT_BINARY_DIR}/regsign-client.map)

# The regsign CLI: a command table (regsign.c) and one file per group of
# subcommands. `regsign audit` comes from signer/store.cmake's
# regsign-audit-cli when that part of the tree is present.
add_executable(regsign
  ${CMAKE_CURRENT_LIST_DIR}/regsign.c
  ${CMAKE_CURRENT_LIST_DIR}/cli_util.c
  ${CMAKE_CURRENT_LIST_DIR}/cli_cert.c
  ${CMAKE_CURRENT_LIST_DIR}/cli_info.c
  ${CMAKE_CURRENT_LIST_DIR}/cli_zone.c
  ${CMAKE_CURRENT_LIST_DIR}/cli_import.c
  ${CMAKE_CURRENT_LIST_DIR}/cli_bench.c
  ${CMAKE_CURRENT_LIST_DIR}/cli_bench_report.c)
target_link_libraries(regsign PRIVATE regsign-client PkgConfig::OPENSSL PkgConfig::LDNS
                      Threads::Threads)
if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/cli_audit.c AND EXISTS ${CMAKE_CURRENT_LIST_DIR}/audit.c)
  target_link_libraries(regsign PRIVATE regsign-audit-cli)
  target_compile_definitions(regsign PRIVATE REGSIGN_HAVE_CLI_AUDIT=1)
endif()
