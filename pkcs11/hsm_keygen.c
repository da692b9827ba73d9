/*
 * libregsign-hsm: EC key generation inside the token, and the label check the
 * key ceremony runs before it makes anything.
 */
#include <string.h>

#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/rand.h>

#include "pkcs11/hsm_impl.h"

static int hsm_label_used(struct hsm *h, CK_SESSION_HANDLE s, const char *label,
                          bool *used)
{
	CK_ATTRIBUTE t = { CKA_LABEL, (void *)label, strlen(label) };
	CK_OBJECT_HANDLE o;
	CK_ULONG count = 0;
	int r = hsm__find(h, s, &t, 1, &o, 1, &count);

	if (r == 0)
		*used = count > 0;
	return r;
}

struct hsm_exists_arg {
	const char *label;
	bool exists;
};

static int hsm_exists_fn(struct hsm *h, unsigned si __attribute__((unused)),
                         CK_SESSION_HANDLE s, void *arg)
{
	struct hsm_exists_arg *a = arg;

	return hsm_label_used(h, s, a->label, &a->exists);
}

int hsm_object_exists(hsm_t *h, const char *label, bool *exists)
{
	struct hsm_exists_arg a = { label, false };
	int r;

	if (h == NULL)
		return HSM_ERR_ARG;
	if (label == NULL || label[0] == '\0' || exists == NULL)
		return hsm__fail(h, HSM_ERR_ARG, "object: label needed");
	r = hsm__with_session(h, false, hsm_exists_fn, &a);
	if (r == 0)
		*exists = a.exists;
	return r;
}

struct hsm_keygen_arg {
	const char *label;
	unsigned char id[16];
};

static int hsm_keygen_fn(struct hsm *h, unsigned si __attribute__((unused)),
                         CK_SESSION_HANDLE s, void *arg)
{
	struct hsm_keygen_arg *a = arg;
	CK_MECHANISM mech = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_KEY_TYPE kt = CKK_EC;
	CK_OBJECT_HANDLE pub, priv;
	unsigned char params[16], *pp = params;
	ASN1_OBJECT *oid;
	bool used = false;
	int plen, r;
	CK_RV rv;

	r = hsm_label_used(h, s, a->label, &used);
	if (r != 0)
		return r;
	if (used)
		return hsm__fail(h, HSM_ERR_KEY_EXISTS, "keygen: label %s exists", a->label);
	if (RAND_bytes(a->id, sizeof(a->id)) != 1)
		return hsm__fail(h, HSM_ERR_CRYPTO, "RAND_bytes failed");
	/* CKA_EC_PARAMS is the DER of the curve's OID; OpenSSL writes it. */
	oid = OBJ_nid2obj(NID_X9_62_prime256v1);
	plen = oid != NULL ? i2d_ASN1_OBJECT(oid, NULL) : -1;
	if (plen <= 0 || (size_t)plen > sizeof(params) || i2d_ASN1_OBJECT(oid, &pp) != plen)
		return hsm__fail(h, HSM_ERR_CRYPTO, "cannot encode the P-256 OID");
	{
		CK_ATTRIBUTE pubt[] = {
			{ CKA_KEY_TYPE, &kt, sizeof(kt) },
			{ CKA_TOKEN, &yes, sizeof(yes) },
			{ CKA_PRIVATE, &no, sizeof(no) },
			{ CKA_VERIFY, &yes, sizeof(yes) },
			{ CKA_EC_PARAMS, params, (CK_ULONG)plen },
			{ CKA_LABEL, (void *)a->label, strlen(a->label) },
			{ CKA_ID, a->id, sizeof(a->id) },
		};
		CK_ATTRIBUTE privt[] = {
			{ CKA_KEY_TYPE, &kt, sizeof(kt) },
			{ CKA_TOKEN, &yes, sizeof(yes) },
			{ CKA_PRIVATE, &yes, sizeof(yes) },
			{ CKA_SENSITIVE, &yes, sizeof(yes) },
			{ CKA_EXTRACTABLE, &no, sizeof(no) },
			{ CKA_SIGN, &yes, sizeof(yes) },
			{ CKA_DERIVE, &no, sizeof(no) },
			{ CKA_LABEL, (void *)a->label, strlen(a->label) },
			{ CKA_ID, a->id, sizeof(a->id) },
		};
		rv = h->p11->C_GenerateKeyPair(s, &mech, pubt, sizeof(pubt) / sizeof(pubt[0]),
		                               privt, sizeof(privt) / sizeof(privt[0]),
		                               &pub, &priv);
	}
	if (rv != CKR_OK)
		return hsm__fail_rv(h, "C_GenerateKeyPair", rv);
	return 0;
}

int hsm_keygen_ec(hsm_t *h, const char *label, unsigned char id[16])
{
	struct hsm_keygen_arg a;
	int r;

	if (h == NULL)
		return HSM_ERR_ARG;
	if (label == NULL || label[0] == '\0' || id == NULL)
		return hsm__fail(h, HSM_ERR_ARG, "keygen: label needed");
	memset(&a, 0, sizeof(a));
	a.label = label;
	/* The label check and the generation must not interleave with another
	 * generation of the same label. */
	pthread_mutex_lock(&h->keygen_mu);
	r = hsm__with_session(h, false, hsm_keygen_fn, &a);
	pthread_mutex_unlock(&h->keygen_mu);
	if (r == 0)
		memcpy(id, a.id, sizeof(a.id));
	return r;
}
