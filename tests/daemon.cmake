# Integration tests of regsignd (owner: brief I). Each program makes one fresh
# development setup (hsm-setup/dev-setup.sh: SoftHSM token + key ceremony) in a
# temp dir, runs the real daemon on it and drives it with the Python client
# tests/python/regsign_client.py and the regsign CLI.
find_package(Python3 COMPONENTS Interpreter)
if(TARGET regsignd AND Python3_Interpreter_FOUND)
  foreach(t issue refusals lifecycle hsm_direct zone zone_health cpu_latency)
    if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_daemon_${t}.py)
      regsign_add_script_test(test_daemon_${t}
        COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_daemon_${t}.py
        TIMEOUT 600 LABELS daemon)
      # The HSM process loads SoftHSM, which leaks by design at exit (see
      # tests/fault/lsan-softhsm.supp); the sanitizer build must not count it.
      set_property(TEST test_daemon_${t} APPEND PROPERTY ENVIRONMENT
        "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/fault/lsan-softhsm.supp:print_suppressions=0")
    endif()
  endforeach()
  # It reads the CPU latency limit in force, which every holder changes.
  if(TEST test_daemon_cpu_latency)
    set_property(TEST test_daemon_cpu_latency APPEND PROPERTY RESOURCE_LOCK cpu_dma_latency)
  endif()
endif()

# Unit tests of the daemon's own modules (compiled in: they are not libraries).
if(TARGET regsignd AND TARGET regsign-store)
  regsign_add_test(test_commit
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_commit.c ${CMAKE_SOURCE_DIR}/signer/commit.c
    LIBS regsign-store PkgConfig::LIBUV Threads::Threads TIMEOUT 120 LABELS daemon)
  regsign_add_test(test_cpu_latency
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_cpu_latency.c ${CMAKE_SOURCE_DIR}/signer/cpu_latency.c
    LIBS PkgConfig::LIBUV TIMEOUT 60 LABELS daemon)
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_server.c)
    regsign_add_test(test_server
      SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_server.c ${CMAKE_SOURCE_DIR}/signer/server.c
        ${CMAKE_SOURCE_DIR}/signer/server_read.c ${CMAKE_SOURCE_DIR}/signer/server_reply.c
      LIBS regsign-proto PkgConfig::LIBUV Threads::Threads TIMEOUT 120 LABELS daemon)
  endif()
endif()

# regsignd.yaml's dns and zone-file keys, and the policy's list of a caller's profiles.
if(TARGET regsign-config AND TARGET regsign-policy)
  regsign_add_test(test_config_dns
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_config_dns.c
    LIBS regsign-config regsign-policy TIMEOUT 60 LABELS daemon)
endif()
