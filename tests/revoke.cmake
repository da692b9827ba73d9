# Tests of the REVOKE path's pipeline (issue 5, target 3): the commit
# pipeline's WAL checkpointer (off the request path; an fsync failure in it
# is fatal) and its stage trace. signer/commit.c is compiled in, as the
# daemon does; the test registers a fault-injecting SQLite VFS of its own.
if(TARGET regsignd AND TARGET regsign-store
   AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_commit_ckpt.c)
  regsign_add_test(test_commit_ckpt
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_commit_ckpt.c ${CMAKE_SOURCE_DIR}/signer/commit.c
    LIBS regsign-store PkgConfig::SQLITE PkgConfig::LIBUV Threads::Threads TIMEOUT 120 LABELS daemon)
endif()
