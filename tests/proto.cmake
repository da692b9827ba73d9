# Tests of the signing-socket protocol: buf, proto codec, client library, CLI,
# and the independent Python client against the C codec.
regsign_add_test(test_buf SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_buf.c
  LIBS regsign-proto TIMEOUT 60)
regsign_add_test(test_proto SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_proto.c
  LIBS regsign-proto TIMEOUT 60)
regsign_add_test(test_client SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_client.c
  LIBS regsign-client Threads::Threads TIMEOUT 120)

# The independent Python client (tests/python/regsign_client.py) against the
# C codec (test_proto --vectors) and the examples in docs/PROTOCOL.md.
find_package(Python3 REQUIRED COMPONENTS Interpreter)
regsign_add_script_test(test_proto_python_codec
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/python/test_codec.py
  TIMEOUT 120)
# The regsign CLI (over libregsign-client) against a fake server built on the
# Python codec; and the Python client's own pipelining.
regsign_add_script_test(test_proto_cli
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/python/test_cli.py
  TIMEOUT 300)

# libFuzzer target for the codec; only clang has -fsanitize=fuzzer. The codec
# sources are compiled in so that they carry the coverage instrumentation.
# Not registered with ctest (run it by hand: fuzz_proto -max_total_time=60).
if(CMAKE_C_COMPILER_ID MATCHES "Clang")
  add_executable(fuzz_proto ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_proto.c
    ${CMAKE_SOURCE_DIR}/signer/buf.c ${CMAKE_SOURCE_DIR}/signer/proto.c)
  target_compile_options(fuzz_proto PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(fuzz_proto PRIVATE -fsanitize=fuzzer,address,undefined)
  set_target_properties(fuzz_proto PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin/fuzz)
endif()

# A C front end's view: client.h alone compiles, links with the shared
# library alone and runs; the library exports only regsign_* names.
regsign_add_script_test(test_proto_client_abi
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/python/test_client_abi.py
          ${CMAKE_C_COMPILER} ${REGSIGN_SANITIZE}
  TIMEOUT 120)
