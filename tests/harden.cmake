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
  endif()
endif()
