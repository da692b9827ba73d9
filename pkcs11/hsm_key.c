/*
 * libregsign-hsm: keys. Finding a key by URI and refusing a weak one, its
 * public key as SPKI (OpenSSL), the check that private and public keys
 * belong together, signing, and the calls that register and describe keys.
 * Key generation is in hsm_keygen.c.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "pkcs11/hsm_impl.h"

void hsm__key_clear(struct hsm_key *k)
{
	free(k->role);
	hsm_uri_free(k->uri);
	free(k->spki);
	free(k->label);
	memset(k, 0, sizeof(*k));
}

int hsm__find(struct hsm *h, CK_SESSION_HANDLE s, CK_ATTRIBUTE *t, CK_ULONG nt,
              CK_OBJECT_HANDLE *found, CK_ULONG max, CK_ULONG *count)
{
	CK_RV rv, rv2;

	rv = h->p11->C_FindObjectsInit(s, t, nt);
	if (rv != CKR_OK)
		return hsm__fail_rv(h, "C_FindObjectsInit", rv);
	rv = h->p11->C_FindObjects(s, found, max, count);
	rv2 = h->p11->C_FindObjectsFinal(s);
	if (rv != CKR_OK)
		return hsm__fail_rv(h, "C_FindObjects", rv);
	if (rv2 != CKR_OK)
		return hsm__fail_rv(h, "C_FindObjectsFinal", rv2);
	return 0;
}

/* Reads one variable-length attribute into a malloc'd buffer. */
static int hsm_attr_get(struct hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                        CK_ATTRIBUTE_TYPE type, const char *name, const char *role,
                        unsigned char **val, size_t *len)
{
	CK_ATTRIBUTE a = { type, NULL, 0 };
	CK_RV rv;

	*val = NULL;
	rv = h->p11->C_GetAttributeValue(s, o, &a, 1);
	if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE ||
	    (rv == CKR_OK && a.ulValueLen == CK_UNAVAILABLE_INFORMATION))
		return hsm__fail(h, HSM_ERR_KEY_ATTRS, "key %s: cannot read %s", role, name);
	if (rv != CKR_OK)
		return hsm__fail_rv(h, "C_GetAttributeValue", rv);
	a.pValue = malloc(a.ulValueLen + 1);
	if (a.pValue == NULL)
		return hsm__fail(h, HSM_ERR_NOMEM, "out of memory");
	rv = h->p11->C_GetAttributeValue(s, o, &a, 1);
	if (rv != CKR_OK) {
		free(a.pValue);
		return hsm__fail_rv(h, "C_GetAttributeValue", rv);
	}
	*val = a.pValue;
	*len = a.ulValueLen;
	return 0;
}

/* The private-key policy of the whole project: a key the token would let out,
 * or that was ever let out, does not sign for regsign. */
int hsm__key_check_attrs(struct hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                         const char *role)
{
	CK_KEY_TYPE type = 0;
	CK_BBOOL sign = CK_FALSE, sens = CK_FALSE, extr = CK_TRUE, never = CK_FALSE;
	CK_ATTRIBUTE t[] = {
		{ CKA_KEY_TYPE, &type, sizeof(type) },
		{ CKA_SIGN, &sign, sizeof(sign) },
		{ CKA_SENSITIVE, &sens, sizeof(sens) },
		{ CKA_EXTRACTABLE, &extr, sizeof(extr) },
		{ CKA_NEVER_EXTRACTABLE, &never, sizeof(never) },
	};
	CK_RV rv = h->p11->C_GetAttributeValue(s, o, t, 5);

	if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE)
		return hsm__fail(h, HSM_ERR_KEY_ATTRS, "key %s: cannot read its attributes", role);
	if (rv != CKR_OK)
		return hsm__fail_rv(h, "C_GetAttributeValue", rv);
	if (type != CKK_EC)
		return hsm__fail(h, HSM_ERR_KEY_ATTRS, "key %s: not an EC key", role);
	if (sign != CK_TRUE)
		return hsm__fail(h, HSM_ERR_KEY_ATTRS, "key %s: CKA_SIGN is false", role);
	if (sens != CK_TRUE)
		return hsm__fail(h, HSM_ERR_KEY_ATTRS, "key %s: CKA_SENSITIVE is false", role);
	if (extr != CK_FALSE)
		return hsm__fail(h, HSM_ERR_KEY_ATTRS, "key %s: CKA_EXTRACTABLE is true", role);
	if (never != CK_TRUE)
		return hsm__fail(h, HSM_ERR_KEY_ATTRS, "key %s: CKA_NEVER_EXTRACTABLE is false",
		                 role);
	return 0;
}

/* Builds the DER SubjectPublicKeyInfo from CKA_EC_PARAMS (a named curve OID)
 * and CKA_EC_POINT (an OCTET STRING holding the uncompressed point; some
 * modules give the bare point). OpenSSL checks the point is on the curve. */
static int hsm_spki_from_ec(const unsigned char *params, size_t plen,
                            const unsigned char *point, size_t ptlen,
                            unsigned char **spki, size_t *spki_len,
                            unsigned *bits, size_t *field_len)
{
	const unsigned char *p = params;
	ASN1_OBJECT *oid = NULL;
	ASN1_OCTET_STRING *os = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	OSSL_PARAM prm[3];
	unsigned char *der = NULL;
	const unsigned char *pt = point;
	size_t ptl = ptlen;
	const char *group;
	int nid, len, r = HSM_ERR_KEY_ATTRS;

	oid = d2i_ASN1_OBJECT(NULL, &p, (long)plen);
	if (oid == NULL || p != params + plen)
		goto out;
	nid = OBJ_obj2nid(oid);
	if (nid == NID_X9_62_prime256v1) {
		*bits = 256;
		*field_len = 32;
	} else if (nid == NID_secp384r1) {
		*bits = 384;
		*field_len = 48;
	} else {
		goto out;
	}
	group = OBJ_nid2sn(nid);
	p = point;
	os = d2i_ASN1_OCTET_STRING(NULL, &p, (long)ptlen);
	if (os != NULL && p == point + ptlen) {
		pt = ASN1_STRING_get0_data(os);
		ptl = (size_t)ASN1_STRING_length(os);
	}
	if (ptl != 1 + 2 * *field_len || pt[0] != 0x04)
		goto out;
	r = HSM_ERR_CRYPTO;
	prm[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
	                                          (char *)group, 0);
	prm[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
	                                           (void *)pt, ptl);
	prm[2] = OSSL_PARAM_construct_end();
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1)
		goto out;
	if (EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, prm) != 1) {
		r = HSM_ERR_KEY_ATTRS;
		goto out;
	}
	len = i2d_PUBKEY(pkey, &der);
	if (len <= 0)
		goto out;
	*spki = der;
	*spki_len = (size_t)len;
	der = NULL;
	r = 0;
out:
	OPENSSL_free(der);
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(ctx);
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(oid);
	return r;
}

int hsm__sig_raw_to_der(const unsigned char *raw, size_t rawlen,
                        unsigned char *der, size_t *derlen)
{
	ECDSA_SIG *sig = NULL;
	BIGNUM *br = NULL, *bs = NULL;
	unsigned char *p = der;
	int len, r = HSM_ERR_CRYPTO;

	if (rawlen == 0 || rawlen % 2 != 0)
		return HSM_ERR_ARG;
	sig = ECDSA_SIG_new();
	br = BN_bin2bn(raw, (int)(rawlen / 2), NULL);
	bs = BN_bin2bn(raw + rawlen / 2, (int)(rawlen / 2), NULL);
	if (sig == NULL || br == NULL || bs == NULL || ECDSA_SIG_set0(sig, br, bs) != 1)
		goto out;
	br = bs = NULL; /* owned by sig now */
	len = i2d_ECDSA_SIG(sig, NULL);
	if (len <= 0)
		goto out;
	if ((size_t)len > *derlen) {
		r = HSM_ERR_ARG;
		goto out;
	}
	if (i2d_ECDSA_SIG(sig, &p) != len)
		goto out;
	*derlen = (size_t)len;
	r = 0;
out:
	BN_free(br);
	BN_free(bs);
	ECDSA_SIG_free(sig);
	return r;
}

/* Verifies a raw r||s signature over a digest against a DER SPKI. */
int hsm__verify_raw(const unsigned char *spki, size_t spki_len,
                    const unsigned char *digest, size_t dlen,
                    const unsigned char *raw, size_t rawlen)
{
	const unsigned char *p = spki;
	EVP_PKEY *pkey = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	unsigned char der[HSM_SIG_MAX];
	size_t derlen = sizeof(der);
	int v, r = HSM_ERR_CRYPTO;

	pkey = d2i_PUBKEY(NULL, &p, (long)spki_len);
	if (pkey == NULL || hsm__sig_raw_to_der(raw, rawlen, der, &derlen) != 0)
		goto out;
	ctx = EVP_PKEY_CTX_new(pkey, NULL);
	if (ctx == NULL || EVP_PKEY_verify_init(ctx) != 1)
		goto out;
	v = EVP_PKEY_verify(ctx, der, derlen, digest, dlen);
	r = v == 1 ? 0 : v == 0 ? HSM_ERR_KEY_MISMATCH : HSM_ERR_CRYPTO;
out:
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	return r;
}

int hsm__sign_handle(struct hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                     size_t field_len, const unsigned char *digest, size_t dlen,
                     unsigned char *raw, size_t *rawlen)
{
	CK_MECHANISM mech = { CKM_ECDSA, NULL, 0 };
	CK_ULONG len = *rawlen;
	CK_RV rv;

	rv = h->p11->C_SignInit(s, &mech, o);
	if (rv != CKR_OK)
		return hsm__fail_rv(h, "C_SignInit", rv);
	rv = h->p11->C_Sign(s, (CK_BYTE_PTR)digest, dlen, raw, &len);
	if (rv != CKR_OK)
		return hsm__fail_rv(h, "C_Sign", rv);
	if (len != 2 * field_len)
		return hsm__fail(h, HSM_ERR_PKCS11, "C_Sign: %lu bytes, expected %zu",
		                 (unsigned long)len, 2 * field_len);
	*rawlen = len;
	return 0;
}

/* Finds exactly one object of class cls with the given label and/or id. */
static int hsm_find_one(struct hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls,
                        const char *label, const unsigned char *id, size_t id_len,
                        const char *role, const char *what, CK_OBJECT_HANDLE *o)
{
	CK_BBOOL token = CK_TRUE;
	CK_ATTRIBUTE t[4];
	CK_OBJECT_HANDLE found[2];
	CK_ULONG nt = 0, count = 0;
	int r;

	/* Keys are token objects. The session copies of hsm_copy.c share their
	 * label and id, and a module may show them to every session of ours. */
	t[nt++] = (CK_ATTRIBUTE){ CKA_TOKEN, &token, sizeof(token) };
	t[nt++] = (CK_ATTRIBUTE){ CKA_CLASS, &cls, sizeof(cls) };
	if (label != NULL)
		t[nt++] = (CK_ATTRIBUTE){ CKA_LABEL, (void *)label, strlen(label) };
	if (id != NULL && id_len > 0)
		t[nt++] = (CK_ATTRIBUTE){ CKA_ID, (void *)id, id_len };
	r = hsm__find(h, s, t, nt, found, 2, &count);
	if (r != 0)
		return r;
	if (count == 0)
		return hsm__fail(h, HSM_ERR_KEY_NOT_FOUND, "key %s: no %s matches", role, what);
	if (count > 1)
		return hsm__fail(h, HSM_ERR_KEY_AMBIGUOUS, "key %s: more than one %s matches",
		                 role, what);
	*o = found[0];
	return 0;
}

int hsm__key_locate(struct hsm *h, CK_SESSION_HANDLE s, struct hsm_key *k, bool first)
{
	CK_OBJECT_HANDLE priv, pub;
	unsigned char *id = NULL, *label = NULL, *params = NULL, *point = NULL;
	unsigned char *spki = NULL;
	unsigned char digest[64], raw[HSM_SIG_MAX];
	size_t id_len = 0, label_len = 0, plen = 0, ptlen = 0, spki_len = 0;
	size_t field_len = 0, rawlen = sizeof(raw);
	size_t uid_len;
	const unsigned char *uid = hsm_uri_id(k->uri, &uid_len);
	unsigned bits = 0;
	int r;

	r = hsm_find_one(h, s, CKO_PRIVATE_KEY, hsm_uri_label(k->uri), uid, uid_len,
	                 k->role, "private key", &priv);
	if (r == 0)
		r = hsm__key_check_attrs(h, s, priv, k->role);
	if (r == 0)
		r = hsm_attr_get(h, s, priv, CKA_ID, "CKA_ID", k->role, &id, &id_len);
	if (r == 0)
		r = hsm_attr_get(h, s, priv, CKA_LABEL, "CKA_LABEL", k->role, &label,
		                 &label_len);
	if (r != 0)
		goto out;
	if (id_len > sizeof(k->id)) {
		r = hsm__fail(h, HSM_ERR_KEY_ATTRS, "key %s: CKA_ID longer than %zu bytes",
		              k->role, sizeof(k->id));
		goto out;
	}
	label[label_len] = '\0';
	/* The pair shares its CKA_ID (how keygen and every PKCS#11 tool make
	 * them); a key without an id can only be paired by label. */
	r = hsm_find_one(h, s, CKO_PUBLIC_KEY, id_len > 0 ? NULL : (char *)label,
	                 id_len > 0 ? id : NULL, id_len, k->role, "public key", &pub);
	if (r == 0)
		r = hsm_attr_get(h, s, pub, CKA_EC_PARAMS, "CKA_EC_PARAMS", k->role,
		                 &params, &plen);
	if (r == 0)
		r = hsm_attr_get(h, s, pub, CKA_EC_POINT, "CKA_EC_POINT", k->role,
		                 &point, &ptlen);
	if (r != 0)
		goto out;
	r = hsm_spki_from_ec(params, plen, point, ptlen, &spki, &spki_len, &bits,
	                     &field_len);
	if (r != 0) {
		r = hsm__fail(h, r, "key %s: public key is not a supported EC key", k->role);
		goto out;
	}
	if (!first && (spki_len != k->spki_len || memcmp(spki, k->spki, spki_len) != 0)) {
		r = hsm__fail(h, HSM_ERR_KEY_MISMATCH,
		              "key %s: public key changed since the key was added", k->role);
		goto out;
	}
	/* The attribute check trusts the token's word; a signature that
	 * verifies shows this private key is the public key's partner. */
	if (RAND_bytes(digest, (int)field_len) != 1) {
		r = hsm__fail(h, HSM_ERR_CRYPTO, "RAND_bytes failed");
		goto out;
	}
	r = hsm__sign_handle(h, s, priv, field_len, digest, field_len, raw, &rawlen);
	if (r != 0)
		goto out;
	r = hsm__verify_raw(spki, spki_len, digest, field_len, raw, rawlen);
	if (r != 0) {
		r = hsm__fail(h, r, "key %s: private key does not match its public key",
		              k->role);
		goto out;
	}
	k->priv = priv;
	if (first) {
		k->spki = spki;
		k->spki_len = spki_len;
		spki = NULL;
		k->label = (char *)label;
		label = NULL;
		memcpy(k->id, id, id_len);
		k->id_len = id_len;
		k->curve_bits = bits;
		k->field_len = field_len;
	}
	r = 0;
out:
	free(id);
	free(label);
	free(params);
	free(point);
	OPENSSL_free(spki);
	return r;
}

struct hsm_key_add_arg {
	char *role;
	struct hsm_uri *uri;
	int key_id;
};

/* Runs with the exclusive lock held: no other call sees the new slot until
 * nkeys grows, and no other hsm_key_add() can take the same slot. */
static int hsm_key_add_fn(struct hsm *h, unsigned si __attribute__((unused)),
                          CK_SESSION_HANDLE s, void *arg)
{
	struct hsm_key_add_arg *a = arg;
	unsigned n = atomic_load(&h->nkeys);
	struct hsm_key *k;
	int r;

	if (!hsm_uri_match_token(a->uri, &h->module_info, h->slot, &h->slot_info,
	                         &h->token_info))
		return hsm__fail(h, HSM_ERR_URI, "key %s: URI names another token than %s",
		                 a->role, h->token_label);
	for (unsigned i = 0; i < n; i++) {
		if (strcmp(h->keys[i].role, a->role) == 0)
			return hsm__fail(h, HSM_ERR_ARG, "key %s: role already added", a->role);
	}
	if (n == HSM_MAX_KEYS)
		return hsm__fail(h, HSM_ERR_FULL, "key %s: more than %d keys", a->role,
		                 HSM_MAX_KEYS);
	k = &h->keys[n];
	memset(k, 0, sizeof(*k));
	k->role = a->role;
	k->uri = a->uri;
	r = hsm__key_locate(h, s, k, true);
	if (r != 0) {
		/* The role and URI stay with the caller for a retry. */
		k->role = NULL;
		k->uri = NULL;
		hsm__key_clear(k);
		return r;
	}
	a->role = NULL;
	a->uri = NULL;
	a->key_id = (int)n;
	atomic_store(&h->nkeys, n + 1);
	return 0;
}

int hsm_key_add(hsm_t *h, const char *role, const char *uri, int *key_id)
{
	struct hsm_key_add_arg a = { NULL, NULL, -1 };
	char uerr[HSM_ERRTEXT_MAX];
	int r;

	if (h == NULL)
		return HSM_ERR_ARG;
	if (role == NULL || role[0] == '\0' || uri == NULL || key_id == NULL)
		return hsm__fail(h, HSM_ERR_ARG, "key: role and URI needed");
	r = hsm_uri_parse(uri, HSM_URI_KEY, &a.uri, uerr, sizeof(uerr));
	if (r != 0)
		return hsm__fail(h, r, "key %s: %s", role, uerr);
	a.role = strdup(role);
	if (a.role == NULL) {
		r = hsm__fail(h, HSM_ERR_NOMEM, "out of memory");
		goto out;
	}
	r = hsm__with_session(h, true, hsm_key_add_fn, &a);
	if (r != 0)
		goto out;
	*key_id = a.key_id;
	r = 0;
out:
	free(a.role);
	hsm_uri_free(a.uri);
	return r;
}

int hsm_key_find(hsm_t *h, const char *role, int *key_id)
{
	unsigned n;

	if (h == NULL || role == NULL || key_id == NULL)
		return HSM_ERR_ARG;
	n = atomic_load(&h->nkeys);
	for (unsigned i = 0; i < n; i++) {
		if (strcmp(h->keys[i].role, role) == 0) {
			*key_id = (int)i;
			return 0;
		}
	}
	return hsm__fail(h, HSM_ERR_KEY_NOT_FOUND, "no key for role %s", role);
}

int hsm_key_public(hsm_t *h, int key_id, unsigned char **spki, size_t *len)
{
	const struct hsm_key *k;
	unsigned char *p;

	if (h == NULL || spki == NULL || len == NULL || key_id < 0 ||
	    (unsigned)key_id >= atomic_load(&h->nkeys))
		return HSM_ERR_ARG;
	k = &h->keys[key_id];
	p = malloc(k->spki_len);
	if (p == NULL)
		return HSM_ERR_NOMEM;
	memcpy(p, k->spki, k->spki_len);
	*spki = p;
	*len = k->spki_len;
	return 0;
}

int hsm_key_info(hsm_t *h, int key_id, struct hsm_key_info *info)
{
	const struct hsm_key *k;

	if (h == NULL || info == NULL || key_id < 0 ||
	    (unsigned)key_id >= atomic_load(&h->nkeys))
		return HSM_ERR_ARG;
	k = &h->keys[key_id];
	memset(info, 0, sizeof(*info));
	info->role = k->role;
	info->label = k->label != NULL ? k->label : "";
	memcpy(info->id, k->id, k->id_len);
	info->id_len = k->id_len;
	info->curve_bits = k->curve_bits;
	info->digest_len = k->field_len;
	info->raw_sig_len = 2 * k->field_len;
	info->signatures = atomic_load(&k->signatures);
	return 0;
}
