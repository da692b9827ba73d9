# Tests of the REVOKE path's pipeline (issue 5, target 3): the commit
# pipeline's WAL checkpointer (off the request path; an fsync failure in it
# is fatal) and its stage trace. signer/commit.c is compiled in, as the
# daemon does; the test registers a fault-injecting SQLite VFS of its own.
if(TARGET regsignd AND TARGET regsign-store
   AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_commit_ckpt.c)
  regsign_add_test(test_commit_ckpt
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_commit_ckpt.c
            ${CMAKE_CURRENT_SOURCE_DIR}/unit/commit_fixture.c ${CMAKE_SOURCE_DIR}/signer/commit.c
    LIBS regsign-store PkgConfig::SQLITE PkgConfig::LIBUV Threads::Threads TIMEOUT 120 LABELS daemon)
endif()

# REVOKE's order through the real daemon: the HSM is asked for a revocation's
# signatures only after its INTENT is durable, though the zone builds the
# change meanwhile; the first pass's refusals publish nothing.
find_package(Python3 COMPONENTS Interpreter)
if(TARGET regsignd AND Python3_Interpreter_FOUND
   AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_daemon_revoke_order.py)
  regsign_add_script_test(test_daemon_revoke_order
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_daemon_revoke_order.py
    TIMEOUT 600 LABELS daemon)
  set_property(TEST test_daemon_revoke_order APPEND PROPERTY ENVIRONMENT
    "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/fault/lsan-softhsm.supp:print_suppressions=0")
endif()

# The intent gate in front of the HSM signer (signer/zonepub_hsm.c) with the
# real commit pipeline: no batch reaches the signer before the intent that
# holds the gate is durable; a failed or refused intent fails the batch.
if(TARGET regsign-zonepub-hsm AND TARGET regsign-store
   AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_commit_gate.c)
  regsign_add_test(test_commit_gate
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_commit_gate.c
            ${CMAKE_CURRENT_SOURCE_DIR}/unit/commit_fixture.c ${CMAKE_SOURCE_DIR}/signer/commit.c
    LIBS regsign-zonepub-hsm regsign-store PkgConfig::SQLITE PkgConfig::LIBUV Threads::Threads
    TIMEOUT 120 LABELS daemon)
endif()
