/*
 * p11fault's wrappers: one per PKCS#11 2.40 function, included once by
 * p11fault.c. Functions on a session go through shim_enter()/shim_leave()
 * (faults, counting, session-use checks); the others through shim_enter()
 * only. A few are written out because they do more than forward.
 */
#ifndef REGSIGN_TESTS_FAULT_P11FAULT_FWD_H
#define REGSIGN_TESTS_FAULT_P11FAULT_FWD_H

#define REAL_OR_FAIL() \
	do { \
		if (real == NULL) \
			return CKR_CRYPTOKI_NOT_INITIALIZED; \
	} while (0)

#define SESS_FN(name, params, args) \
	static CK_RV w_##name params \
	{ \
		CK_RV rv; \
		REAL_OR_FAIL(); \
		if (shim_enter(#name, true, s, &rv)) \
			return rv; \
		rv = real->name args; \
		shim_leave(s); \
		return rv; \
	}

#define PLAIN_FN(name, params, args) \
	static CK_RV w_##name params \
	{ \
		CK_RV rv; \
		REAL_OR_FAIL(); \
		if (shim_enter(#name, false, 0, &rv)) \
			return rv; \
		return real->name args; \
	}

static CK_RV w_C_Initialize(CK_VOID_PTR args)
{
	CK_RV rv;

	if (load_real() != 0)
		return CKR_GENERAL_ERROR;
	pthread_mutex_lock(&mu);
	init_flags = args != NULL ? ((CK_C_INITIALIZE_ARGS *)args)->flags : 0;
	pthread_mutex_unlock(&mu);
	if (shim_enter("C_Initialize", false, 0, &rv))
		return rv;
	return real->C_Initialize(args);
}

PLAIN_FN(C_Finalize, (CK_VOID_PTR r), (r))
PLAIN_FN(C_GetInfo, (CK_INFO_PTR i), (i))

static CK_RV w_C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
	return C_GetFunctionList(list);
}

static CK_RV w_C_GetSlotList(CK_BBOOL present, CK_SLOT_ID_PTR list, CK_ULONG_PTR n)
{
	CK_RV rv;

	REAL_OR_FAIL();
	if (shim_enter("C_GetSlotList", false, 0, &rv))
		return rv;
	/* A token that is away is not listed as present. */
	if (present && token_hidden(true)) {
		if (n == NULL)
			return CKR_ARGUMENTS_BAD;
		*n = 0;
		return CKR_OK;
	}
	return real->C_GetSlotList(present, list, n);
}

static CK_RV w_C_GetSlotInfo(CK_SLOT_ID id, CK_SLOT_INFO_PTR i)
{
	CK_RV rv;

	REAL_OR_FAIL();
	if (shim_enter("C_GetSlotInfo", false, 0, &rv))
		return rv;
	rv = real->C_GetSlotInfo(id, i);
	if (rv == CKR_OK && token_hidden(false))
		i->flags &= ~(CK_FLAGS)CKF_TOKEN_PRESENT;
	return rv;
}

static CK_RV w_C_GetTokenInfo(CK_SLOT_ID id, CK_TOKEN_INFO_PTR i)
{
	CK_RV rv;

	REAL_OR_FAIL();
	if (shim_enter("C_GetTokenInfo", false, 0, &rv))
		return rv;
	if (token_hidden(false))
		return CKR_TOKEN_NOT_PRESENT;
	return real->C_GetTokenInfo(id, i);
}

PLAIN_FN(C_WaitForSlotEvent, (CK_FLAGS f, CK_SLOT_ID_PTR id, CK_VOID_PTR r), (f, id, r))
PLAIN_FN(C_GetMechanismList, (CK_SLOT_ID id, CK_MECHANISM_TYPE_PTR l, CK_ULONG_PTR n),
         (id, l, n))
PLAIN_FN(C_GetMechanismInfo, (CK_SLOT_ID id, CK_MECHANISM_TYPE t, CK_MECHANISM_INFO_PTR i),
         (id, t, i))
PLAIN_FN(C_InitToken, (CK_SLOT_ID id, CK_UTF8CHAR_PTR pin, CK_ULONG len, CK_UTF8CHAR_PTR l),
         (id, pin, len, l))
SESS_FN(C_InitPIN, (CK_SESSION_HANDLE s, CK_UTF8CHAR_PTR pin, CK_ULONG len), (s, pin, len))
SESS_FN(C_SetPIN, (CK_SESSION_HANDLE s, CK_UTF8CHAR_PTR o, CK_ULONG ol, CK_UTF8CHAR_PTR n,
                   CK_ULONG nl), (s, o, ol, n, nl))

static CK_RV w_C_OpenSession(CK_SLOT_ID id, CK_FLAGS f, CK_VOID_PTR app, CK_NOTIFY cb,
                             CK_SESSION_HANDLE_PTR s)
{
	CK_RV rv;

	REAL_OR_FAIL();
	if (shim_enter("C_OpenSession", false, 0, &rv))
		return rv;
	if (token_hidden(true))
		return CKR_TOKEN_NOT_PRESENT;
	return real->C_OpenSession(id, f, app, cb, s);
}

SESS_FN(C_CloseSession, (CK_SESSION_HANDLE s), (s))
PLAIN_FN(C_CloseAllSessions, (CK_SLOT_ID id), (id))
SESS_FN(C_GetSessionInfo, (CK_SESSION_HANDLE s, CK_SESSION_INFO_PTR i), (s, i))
SESS_FN(C_GetOperationState, (CK_SESSION_HANDLE s, CK_BYTE_PTR st, CK_ULONG_PTR l),
        (s, st, l))
SESS_FN(C_SetOperationState, (CK_SESSION_HANDLE s, CK_BYTE_PTR st, CK_ULONG l,
                              CK_OBJECT_HANDLE e, CK_OBJECT_HANDLE a), (s, st, l, e, a))
SESS_FN(C_Login, (CK_SESSION_HANDLE s, CK_USER_TYPE u, CK_UTF8CHAR_PTR pin, CK_ULONG len),
        (s, u, pin, len))
SESS_FN(C_Logout, (CK_SESSION_HANDLE s), (s))
SESS_FN(C_CreateObject, (CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR t, CK_ULONG n,
                         CK_OBJECT_HANDLE_PTR o), (s, t, n, o))
SESS_FN(C_CopyObject, (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_PTR t,
                       CK_ULONG n, CK_OBJECT_HANDLE_PTR no), (s, o, t, n, no))
SESS_FN(C_DestroyObject, (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o), (s, o))
SESS_FN(C_GetObjectSize, (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ULONG_PTR n),
        (s, o, n))
SESS_FN(C_GetAttributeValue, (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_PTR t,
                              CK_ULONG n), (s, o, t, n))
SESS_FN(C_SetAttributeValue, (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_PTR t,
                              CK_ULONG n), (s, o, t, n))
SESS_FN(C_FindObjectsInit, (CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR t, CK_ULONG n), (s, t, n))
SESS_FN(C_FindObjects, (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE_PTR o, CK_ULONG m,
                        CK_ULONG_PTR n), (s, o, m, n))
SESS_FN(C_FindObjectsFinal, (CK_SESSION_HANDLE s), (s))
SESS_FN(C_EncryptInit, (CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k),
        (s, m, k))
SESS_FN(C_Encrypt, (CK_SESSION_HANDLE s, CK_BYTE_PTR d, CK_ULONG dl, CK_BYTE_PTR e,
                    CK_ULONG_PTR el), (s, d, dl, e, el))
SESS_FN(C_EncryptUpdate, (CK_SESSION_HANDLE s, CK_BYTE_PTR d, CK_ULONG dl, CK_BYTE_PTR e,
                          CK_ULONG_PTR el), (s, d, dl, e, el))
SESS_FN(C_EncryptFinal, (CK_SESSION_HANDLE s, CK_BYTE_PTR e, CK_ULONG_PTR el), (s, e, el))
SESS_FN(C_DecryptInit, (CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k),
        (s, m, k))
SESS_FN(C_Decrypt, (CK_SESSION_HANDLE s, CK_BYTE_PTR e, CK_ULONG el, CK_BYTE_PTR d,
                    CK_ULONG_PTR dl), (s, e, el, d, dl))
SESS_FN(C_DecryptUpdate, (CK_SESSION_HANDLE s, CK_BYTE_PTR e, CK_ULONG el, CK_BYTE_PTR d,
                          CK_ULONG_PTR dl), (s, e, el, d, dl))
SESS_FN(C_DecryptFinal, (CK_SESSION_HANDLE s, CK_BYTE_PTR d, CK_ULONG_PTR dl), (s, d, dl))
SESS_FN(C_DigestInit, (CK_SESSION_HANDLE s, CK_MECHANISM_PTR m), (s, m))
SESS_FN(C_Digest, (CK_SESSION_HANDLE s, CK_BYTE_PTR d, CK_ULONG dl, CK_BYTE_PTR o,
                   CK_ULONG_PTR ol), (s, d, dl, o, ol))
SESS_FN(C_DigestUpdate, (CK_SESSION_HANDLE s, CK_BYTE_PTR d, CK_ULONG dl), (s, d, dl))
SESS_FN(C_DigestKey, (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE k), (s, k))
SESS_FN(C_DigestFinal, (CK_SESSION_HANDLE s, CK_BYTE_PTR o, CK_ULONG_PTR ol), (s, o, ol))
SESS_FN(C_SignInit, (CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k), (s, m, k))

/* A single-part C_Sign ends the operation whatever it returns (except for a
 * size query or CKR_BUFFER_TOO_SMALL). A fault injected here must end the
 * real operation too, or the session would be left with CKR_OPERATION_ACTIVE,
 * which no real module does. */
static CK_RV w_C_Sign(CK_SESSION_HANDLE s, CK_BYTE_PTR d, CK_ULONG dl, CK_BYTE_PTR sig,
                      CK_ULONG_PTR sl)
{
	CK_BYTE scratch[1024];
	CK_ULONG sn = sizeof(scratch);
	CK_RV rv;

	REAL_OR_FAIL();
	if (shim_enter("C_Sign", true, s, &rv)) {
		if (sig != NULL) {
			pthread_rwlock_rdlock(&gate);
			real->C_Sign(s, d, dl, scratch, &sn);
			pthread_rwlock_unlock(&gate);
		}
		return rv;
	}
	rv = real->C_Sign(s, d, dl, sig, sl);
	shim_leave(s);
	return rv;
}

SESS_FN(C_SignUpdate, (CK_SESSION_HANDLE s, CK_BYTE_PTR d, CK_ULONG dl), (s, d, dl))
SESS_FN(C_SignFinal, (CK_SESSION_HANDLE s, CK_BYTE_PTR o, CK_ULONG_PTR ol), (s, o, ol))
SESS_FN(C_SignRecoverInit, (CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k),
        (s, m, k))
SESS_FN(C_SignRecover, (CK_SESSION_HANDLE s, CK_BYTE_PTR d, CK_ULONG dl, CK_BYTE_PTR o,
                        CK_ULONG_PTR ol), (s, d, dl, o, ol))
SESS_FN(C_VerifyInit, (CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k),
        (s, m, k))
SESS_FN(C_Verify, (CK_SESSION_HANDLE s, CK_BYTE_PTR d, CK_ULONG dl, CK_BYTE_PTR sig,
                   CK_ULONG sl), (s, d, dl, sig, sl))
SESS_FN(C_VerifyUpdate, (CK_SESSION_HANDLE s, CK_BYTE_PTR d, CK_ULONG dl), (s, d, dl))
SESS_FN(C_VerifyFinal, (CK_SESSION_HANDLE s, CK_BYTE_PTR sig, CK_ULONG sl), (s, sig, sl))
SESS_FN(C_VerifyRecoverInit, (CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k),
        (s, m, k))
SESS_FN(C_VerifyRecover, (CK_SESSION_HANDLE s, CK_BYTE_PTR sig, CK_ULONG sl, CK_BYTE_PTR d,
                          CK_ULONG_PTR dl), (s, sig, sl, d, dl))
SESS_FN(C_DigestEncryptUpdate, (CK_SESSION_HANDLE s, CK_BYTE_PTR p, CK_ULONG pl,
                                CK_BYTE_PTR e, CK_ULONG_PTR el), (s, p, pl, e, el))
SESS_FN(C_DecryptDigestUpdate, (CK_SESSION_HANDLE s, CK_BYTE_PTR e, CK_ULONG el,
                                CK_BYTE_PTR p, CK_ULONG_PTR pl), (s, e, el, p, pl))
SESS_FN(C_SignEncryptUpdate, (CK_SESSION_HANDLE s, CK_BYTE_PTR p, CK_ULONG pl,
                              CK_BYTE_PTR e, CK_ULONG_PTR el), (s, p, pl, e, el))
SESS_FN(C_DecryptVerifyUpdate, (CK_SESSION_HANDLE s, CK_BYTE_PTR e, CK_ULONG el,
                                CK_BYTE_PTR p, CK_ULONG_PTR pl), (s, e, el, p, pl))
SESS_FN(C_GenerateKey, (CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR t,
                        CK_ULONG n, CK_OBJECT_HANDLE_PTR k), (s, m, t, n, k))
SESS_FN(C_GenerateKeyPair, (CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR pt,
                            CK_ULONG pn, CK_ATTRIBUTE_PTR vt, CK_ULONG vn,
                            CK_OBJECT_HANDLE_PTR pk, CK_OBJECT_HANDLE_PTR vk),
        (s, m, pt, pn, vt, vn, pk, vk))
SESS_FN(C_WrapKey, (CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE w,
                    CK_OBJECT_HANDLE k, CK_BYTE_PTR o, CK_ULONG_PTR ol), (s, m, w, k, o, ol))
SESS_FN(C_UnwrapKey, (CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE u,
                      CK_BYTE_PTR wk, CK_ULONG wl, CK_ATTRIBUTE_PTR t, CK_ULONG n,
                      CK_OBJECT_HANDLE_PTR k), (s, m, u, wk, wl, t, n, k))
SESS_FN(C_DeriveKey, (CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE b,
                      CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_OBJECT_HANDLE_PTR k),
        (s, m, b, t, n, k))
SESS_FN(C_SeedRandom, (CK_SESSION_HANDLE s, CK_BYTE_PTR d, CK_ULONG dl), (s, d, dl))
SESS_FN(C_GenerateRandom, (CK_SESSION_HANDLE s, CK_BYTE_PTR d, CK_ULONG dl), (s, d, dl))
SESS_FN(C_GetFunctionStatus, (CK_SESSION_HANDLE s), (s))
SESS_FN(C_CancelFunction, (CK_SESSION_HANDLE s), (s))

static void shim_fill(CK_FUNCTION_LIST_PTR f)
{
#define SHIM_SET(name) f->name = w_##name;
	SHIM_SET(C_Initialize) SHIM_SET(C_Finalize) SHIM_SET(C_GetInfo)
	SHIM_SET(C_GetFunctionList) SHIM_SET(C_GetSlotList) SHIM_SET(C_GetSlotInfo)
	SHIM_SET(C_GetTokenInfo) SHIM_SET(C_GetMechanismList) SHIM_SET(C_GetMechanismInfo)
	SHIM_SET(C_InitToken) SHIM_SET(C_InitPIN) SHIM_SET(C_SetPIN) SHIM_SET(C_OpenSession)
	SHIM_SET(C_CloseSession) SHIM_SET(C_CloseAllSessions) SHIM_SET(C_GetSessionInfo)
	SHIM_SET(C_GetOperationState) SHIM_SET(C_SetOperationState) SHIM_SET(C_Login)
	SHIM_SET(C_Logout) SHIM_SET(C_CreateObject) SHIM_SET(C_CopyObject)
	SHIM_SET(C_DestroyObject) SHIM_SET(C_GetObjectSize) SHIM_SET(C_GetAttributeValue)
	SHIM_SET(C_SetAttributeValue) SHIM_SET(C_FindObjectsInit) SHIM_SET(C_FindObjects)
	SHIM_SET(C_FindObjectsFinal) SHIM_SET(C_EncryptInit) SHIM_SET(C_Encrypt)
	SHIM_SET(C_EncryptUpdate) SHIM_SET(C_EncryptFinal) SHIM_SET(C_DecryptInit)
	SHIM_SET(C_Decrypt) SHIM_SET(C_DecryptUpdate) SHIM_SET(C_DecryptFinal)
	SHIM_SET(C_DigestInit) SHIM_SET(C_Digest) SHIM_SET(C_DigestUpdate)
	SHIM_SET(C_DigestKey) SHIM_SET(C_DigestFinal) SHIM_SET(C_SignInit) SHIM_SET(C_Sign)
	SHIM_SET(C_SignUpdate) SHIM_SET(C_SignFinal) SHIM_SET(C_SignRecoverInit)
	SHIM_SET(C_SignRecover) SHIM_SET(C_VerifyInit) SHIM_SET(C_Verify)
	SHIM_SET(C_VerifyUpdate) SHIM_SET(C_VerifyFinal) SHIM_SET(C_VerifyRecoverInit)
	SHIM_SET(C_VerifyRecover) SHIM_SET(C_DigestEncryptUpdate)
	SHIM_SET(C_DecryptDigestUpdate) SHIM_SET(C_SignEncryptUpdate)
	SHIM_SET(C_DecryptVerifyUpdate) SHIM_SET(C_GenerateKey) SHIM_SET(C_GenerateKeyPair)
	SHIM_SET(C_WrapKey) SHIM_SET(C_UnwrapKey) SHIM_SET(C_DeriveKey) SHIM_SET(C_SeedRandom)
	SHIM_SET(C_GenerateRandom) SHIM_SET(C_GetFunctionStatus) SHIM_SET(C_CancelFunction)
	SHIM_SET(C_WaitForSlotEvent)
#undef SHIM_SET
}

#endif
