# Signing-socket protocol (docs/PROTOCOL.md): the codec shared by regsignd and
# its clients, the client library, and the regsign CLI.

# buf (bounded reader / growable writer) + proto (frame codec). Position
# independent so the shared client library can include it.
add_library(regsign-proto STATIC
  ${CMAKE_CURRENT_LIST_DIR}/buf.c
  ${CMAKE_CURRENT_LIST_DIR}/proto.c)
set_target_properties(regsign-proto PROPERTIES POSITION_INDEPENDENT_CODE ON)
