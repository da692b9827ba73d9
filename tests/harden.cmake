# Hardening tests (brief L): the sandbox of both processes, the storage-fault
# shim, and the libFuzzer build run as a smoke test.

if(TARGET regsign-sandbox)
  # The module path allow-list and argument checks need no sandbox: both builds.
  regsign_add_test(test_sandbox_path
                   SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_sandbox_path.c
                   LIBS regsign-sandbox)

  # Sanitizer builds switch the filters off (LeakSanitizer needs ptrace), so
  # the attack tests run in the normal build only.
  if(NOT REGSIGN_SANITIZE)
    set(HOOK_DIR ${CMAKE_CURRENT_SOURCE_DIR}/sandbox)
    add_executable(sandbox_hook_front ${HOOK_DIR}/hook.c ${HOOK_DIR}/hook_front.c)
    target_link_libraries(sandbox_hook_front PRIVATE regsign-sandbox PkgConfig::LIBUV
                          PkgConfig::SQLITE)
    set_target_properties(sandbox_hook_front PROPERTIES
                          RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin/tests)
    if(TARGET regsign-hsm)
      add_executable(sandbox_hook_hsm ${HOOK_DIR}/hook.c ${HOOK_DIR}/hook_hsm.c)
      target_link_libraries(sandbox_hook_hsm PRIVATE regsign-sandbox regsign-hsm
                            PkgConfig::OPENSSL)
      set_target_properties(sandbox_hook_hsm PROPERTIES
                            RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin/tests)
      regsign_add_test(test_sandbox
                       SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_sandbox.c
                       LIBS regsign-sandbox TIMEOUT 300)
      target_compile_definitions(test_sandbox PRIVATE
        SANDBOX_HOOK_FRONT="$<TARGET_FILE:sandbox_hook_front>"
        SANDBOX_HOOK_HSM="$<TARGET_FILE:sandbox_hook_hsm>")
      add_dependencies(test_sandbox sandbox_hook_front sandbox_hook_hsm)
    endif()
    # regsignd's real HSM process behind its sandbox, spawned through hsmlink on
    # the development setup (hsm-setup/dev-setup.sh, which needs regsign-ceremony).
    if(TARGET regsign-hsmproc AND TARGET regsign-ceremony)
      add_executable(sandbox_hsmd ${HOOK_DIR}/hook_hsmd.c)
      target_link_libraries(sandbox_hsmd PRIVATE regsign-sandbox regsign-hsmproc)
      set_target_properties(sandbox_hsmd PROPERTIES
                            RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin/tests)
      regsign_add_test(test_sandbox_hsmd
                       SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_sandbox_hsmd.c
                               ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_hsm_support.c
                       LIBS regsign-hsmproc regsign-x509 PkgConfig::LIBUV PkgConfig::OPENSSL
                       TIMEOUT 300)
      target_compile_definitions(test_sandbox_hsmd PRIVATE
        SANDBOX_HSMD="$<TARGET_FILE:sandbox_hsmd>")
      add_dependencies(test_sandbox_hsmd sandbox_hsmd regsign-ceremony)
    endif()
  endif()
endif()

# The storage-fault shim (LD_PRELOAD) for the daemon's EIO/ENOSPC tests, and its
# own test through a small probe program. The shim is built without sanitizers
# so that any program of either build can preload it.
add_library(regsign-eio-shim SHARED ${CMAKE_CURRENT_SOURCE_DIR}/faults/eio_shim.c)
target_compile_options(regsign-eio-shim PRIVATE -fno-sanitize=all)
target_link_options(regsign-eio-shim PRIVATE -fno-sanitize=all)
target_link_libraries(regsign-eio-shim PRIVATE ${CMAKE_DL_LIBS})
add_executable(eio_probe ${CMAKE_CURRENT_SOURCE_DIR}/faults/eio_probe.c)
target_link_libraries(eio_probe PRIVATE PkgConfig::SQLITE)
set_target_properties(eio_probe PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin/tests)
regsign_add_test(test_eio_shim SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/faults/test_eio_shim.c
                 TIMEOUT 120)
target_compile_definitions(test_eio_shim PRIVATE
  EIO_PROBE="$<TARGET_FILE:eio_probe>" EIO_SHIM_LIB="$<TARGET_FILE:regsign-eio-shim>")
add_dependencies(test_eio_shim eio_probe regsign-eio-shim)

# libFuzzer smoke run: builds every fuzz target with clang (ASan + UBSan) in
# its own build directory, replays the committed corpora (seeds and past
# crashes) and fuzzes each target for 10 s. The fuzz build is always
# sanitized, so it is registered once, in the normal build. A missing clang
# fails the test. Long runs: tests/fuzz/run.sh --long [HOURS].
if(NOT REGSIGN_SANITIZE)
  regsign_add_script_test(fuzz_smoke
    COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/run.sh --build-dir ${CMAKE_BINARY_DIR}/fuzz
            --time 10
    TIMEOUT 1800 LABELS fuzz)
endif()

# The systemd unit: `systemd-analyze verify` clean, `security --offline=yes`
# exposure at most 3.0 (2.2 when written).
regsign_add_script_test(regsignd_service
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/sandbox/check_service.sh
          ${CMAKE_SOURCE_DIR}/signer/regsignd.service 3.0
  TIMEOUT 120)
# The same unit with the shipped cpu-latency drop-in (docs/CONFIG.md): still
# clean, exposure at most 3.0 (2.4 when written), and the PM QoS device in its
# device allow-list for writing.
regsign_add_script_test(regsignd_service_cpu_latency
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/sandbox/check_service.sh
          ${CMAKE_SOURCE_DIR}/signer/regsignd.service 3.0
          ${CMAKE_SOURCE_DIR}/signer/regsignd-cpu-latency.conf /dev/cpu_dma_latency:w
  TIMEOUT 120)

# The shipped regsignd under its sandbox: users changed (as root), NoNewPrivs,
# seccomp, not dumpable, and every operation still working; a control run with
# sandbox.enabled: false. Normal build only: sanitizer builds compile the
# filters off.
find_package(Python3 COMPONENTS Interpreter)
if(NOT REGSIGN_SANITIZE AND TARGET regsignd AND Python3_Interpreter_FOUND)
  regsign_add_script_test(test_daemon_sandbox
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_daemon_sandbox.py
    TIMEOUT 600 LABELS daemon)
endif()
