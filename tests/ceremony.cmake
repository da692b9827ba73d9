# Tests of hsm-setup/: the ceremony file reader (unit), and the ceremony tool
# and dev-setup.sh end to end on fresh SoftHSM tokens (scripts in tests/ceremony/).
if(TARGET regsign-ceremony-file)
  regsign_add_test(test_ceremony_file
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_ceremony_file.c
    LIBS regsign-ceremony-file PkgConfig::OPENSSL
    TIMEOUT 60)
  target_compile_definitions(test_ceremony_file PRIVATE
    CEREMONY_EXAMPLE="${CMAKE_SOURCE_DIR}/hsm-setup/ceremony.example.yaml")
endif()

if(TARGET regsign-ceremony AND TARGET regsign-config AND TARGET regsign-policy)
  # dev-setup.sh's files read back by the daemon's own parsers.
  regsign_add_test(test_ceremony_devfiles
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_ceremony_devfiles.c
    LIBS regsign-ceremony-file regsign-config regsign-policy regsign-hsm
         PkgConfig::OPENSSL
    TIMEOUT 300)
  # The test runs dev-setup.sh, which runs the tool: build it first.
  add_dependencies(test_ceremony_devfiles regsign-ceremony)
endif()

if(TARGET regsign-ceremony)
  foreach(script example refuse failure dev_setup)
    regsign_add_script_test(ceremony_${script}
      COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/ceremony/${script}.sh
      TIMEOUT 300)
  endforeach()
endif()
