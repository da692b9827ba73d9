# Tests of libregsign-policy (policy/): the strict YAML reader and the policy.
if(TARGET regsign-policy)
  regsign_add_test(test_yconf SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_yconf.c
                   LIBS regsign-policy TIMEOUT 60 LABELS policy)
  regsign_add_test(test_policy SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_policy.c
                   LIBS regsign-policy TIMEOUT 60 LABELS policy)
  target_compile_definitions(test_policy PRIVATE POLICY_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
  regsign_add_test(test_policy_decide
                   SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_policy_decide.c
                   LIBS regsign-policy TIMEOUT 60 LABELS policy)
  regsign_add_test(test_policy_ratelimit
                   SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_policy_ratelimit.c
                   LIBS regsign-policy TIMEOUT 60 LABELS policy)
  regsign_add_test(test_policy_fuzz
                   SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_policy_fuzz.c
                   LIBS regsign-policy TIMEOUT 300 LABELS policy)
  target_compile_definitions(test_policy_fuzz PRIVATE POLICY_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
endif()

# The zone commit's self-check under the verify-signatures policy
# (zonesigner/zone_commit.c, owned with the policy setting that chooses it).
if(TARGET regsign-zone)
  regsign_add_test(test_zone_commit
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_zone_commit.c
            ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_zone_support.c
    LIBS regsign-zone TIMEOUT 120 LABELS policy)
endif()
