# signer/json.c: the JSON string escaper regsignd's replies and the CLI share.
if(TARGET regsign-proto)
  regsign_add_test(test_json
    SOURCES unit/test_json.c
    LIBS regsign-proto)
endif()
