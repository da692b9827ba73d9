/*
 * RFC 7512 URIs: p11-kit parses, this file applies regsign's rules (see
 * hsm_uri.h for the list and the reasons).
 */
#include "pkcs11/hsm_uri.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/uri.h>

#include "pkcs11/hsm.h"

struct hsm_uri {
	P11KitUri *p11;
	enum hsm_uri_kind kind;
	char *label;            /* NUL-terminated copy of CKA_LABEL, or NULL */
	unsigned char *id;      /* copy of CKA_ID, or NULL */
	size_t id_len;
};

static int uri_fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

void hsm_uri_free(struct hsm_uri *u)
{
	if (u == NULL)
		return;
	if (u->p11 != NULL)
		p11_kit_uri_free(u->p11);
	free(u->label);
	free(u->id);
	free(u);
}

/* Copies the object attributes out of p11-kit's structure, so callers get a
 * C string for the label and need not know CK_ATTRIBUTE. */
static int uri_take_object(struct hsm_uri *u, char *err, size_t errlen)
{
	CK_ATTRIBUTE *label = p11_kit_uri_get_attribute(u->p11, CKA_LABEL);
	CK_ATTRIBUTE *id = p11_kit_uri_get_attribute(u->p11, CKA_ID);
	CK_ATTRIBUTE *cls = p11_kit_uri_get_attribute(u->p11, CKA_CLASS);

	if (cls != NULL) {
		CK_OBJECT_CLASS c;
		if (cls->ulValueLen != sizeof(c))
			return uri_fail(err, errlen, HSM_ERR_URI, "bad type attribute");
		memcpy(&c, cls->pValue, sizeof(c));
		if (c != CKO_PRIVATE_KEY)
			return uri_fail(err, errlen, HSM_ERR_URI,
			                "a key URI must have type=private (or no type)");
	}
	if (label == NULL && id == NULL)
		return uri_fail(err, errlen, HSM_ERR_URI,
		                "a key URI needs object= or id=");
	if (label != NULL) {
		if (label->ulValueLen == 0 ||
		    memchr(label->pValue, '\0', label->ulValueLen) != NULL)
			return uri_fail(err, errlen, HSM_ERR_URI,
			                "object= is empty or contains a NUL byte");
		u->label = strndup(label->pValue, label->ulValueLen);
		if (u->label == NULL)
			return HSM_ERR_NOMEM;
	}
	if (id != NULL) {
		if (id->ulValueLen == 0)
			return uri_fail(err, errlen, HSM_ERR_URI, "id= is empty");
		u->id = malloc(id->ulValueLen);
		if (u->id == NULL)
			return HSM_ERR_NOMEM;
		memcpy(u->id, id->pValue, id->ulValueLen);
		u->id_len = id->ulValueLen;
	}
	return 0;
}

int hsm_uri_parse(const char *text, enum hsm_uri_kind kind, struct hsm_uri **out,
                  char *err, size_t errlen)
{
	struct hsm_uri *u = NULL;
	int types, pr, r = HSM_ERR_ARG;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (text == NULL || out == NULL ||
	    (kind != HSM_URI_TOKEN && kind != HSM_URI_KEY))
		goto out;
	r = HSM_ERR_NOMEM;
	u = calloc(1, sizeof(*u));
	if (u == NULL || (u->p11 = p11_kit_uri_new()) == NULL)
		goto out;
	u->kind = kind;
	/* Object attributes are parsed for key URIs only: in a token URI they
	 * are left unrecognised and so refused below. */
	types = P11_KIT_URI_FOR_TOKEN | P11_KIT_URI_FOR_SLOT |
	        P11_KIT_URI_FOR_MODULE_WITH_VERSION;
	if (kind == HSM_URI_KEY)
		types |= P11_KIT_URI_FOR_OBJECT;
	pr = p11_kit_uri_parse(text, types, u->p11);
	if (pr != P11_KIT_URI_OK) {
		r = uri_fail(err, errlen, HSM_ERR_URI, "not a PKCS#11 URI: %s",
		             p11_kit_uri_message(pr));
		goto out;
	}
	/* The messages below never quote the URI: it may hold a PIN. */
	if (p11_kit_uri_get_pin_value(u->p11) != NULL ||
	    p11_kit_uri_get_pin_source(u->p11) != NULL) {
		r = uri_fail(err, errlen, HSM_ERR_URI,
		             "URI carries pin-value or pin-source: the PIN comes only from the pin file");
		goto out;
	}
	if (p11_kit_uri_get_module_name(u->p11) != NULL ||
	    p11_kit_uri_get_module_path(u->p11) != NULL) {
		r = uri_fail(err, errlen, HSM_ERR_URI,
		             "URI names a module: the module comes only from the configuration");
		goto out;
	}
	if (p11_kit_uri_any_unrecognized(u->p11)) {
		r = uri_fail(err, errlen, HSM_ERR_URI, kind == HSM_URI_TOKEN ?
		             "token URI has object or unknown attributes" :
		             "key URI has unknown attributes");
		goto out;
	}
	if (kind == HSM_URI_KEY) {
		r = uri_take_object(u, err, errlen);
		if (r != 0)
			goto out;
	}
	*out = u;
	u = NULL;
	r = 0;
out:
	hsm_uri_free(u);
	return r;
}

int hsm_uri_check(const char *text, enum hsm_uri_kind kind, char *err, size_t errlen)
{
	struct hsm_uri *u = NULL;
	int r = hsm_uri_parse(text, kind, &u, err, errlen);

	hsm_uri_free(u);
	return r;
}

const char *hsm_uri_label(const struct hsm_uri *u)
{
	return u != NULL ? u->label : NULL;
}

const unsigned char *hsm_uri_id(const struct hsm_uri *u, size_t *len)
{
	if (u == NULL || u->id == NULL) {
		if (len != NULL)
			*len = 0;
		return NULL;
	}
	if (len != NULL)
		*len = u->id_len;
	return u->id;
}

bool hsm_uri_match_token(const struct hsm_uri *u, const CK_INFO *module,
                         CK_SLOT_ID slot_id, const CK_SLOT_INFO *slot,
                         const CK_TOKEN_INFO *token)
{
	CK_SLOT_ID want = p11_kit_uri_get_slot_id(u->p11);

	/* p11-kit reports an absent slot-id as (CK_SLOT_ID)-1. */
	if (want != (CK_SLOT_ID)-1 && want != slot_id)
		return false;
	return p11_kit_uri_match_module_info(u->p11, module) &&
	       p11_kit_uri_match_slot_info(u->p11, slot) &&
	       p11_kit_uri_match_token_info(u->p11, token);
}

char *hsm_uri_key_build(const char *token_label, const char *object_label,
                        const unsigned char *id, size_t id_len)
{
	P11KitUri *p = NULL;
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE a;
	char *s = NULL;
	size_t tl;

	if (object_label == NULL || object_label[0] == '\0')
		goto out;
	p = p11_kit_uri_new();
	if (p == NULL)
		goto out;
	if (token_label != NULL) {
		CK_TOKEN_INFO *ti = p11_kit_uri_get_token_info(p);
		tl = strlen(token_label);
		if (tl > sizeof(ti->label))
			goto out;
		/* PKCS#11 labels are blank-padded, not NUL-terminated. */
		memset(ti->label, ' ', sizeof(ti->label));
		memcpy(ti->label, token_label, tl);
	}
	a.type = CKA_LABEL;
	a.pValue = (void *)object_label;
	a.ulValueLen = strlen(object_label);
	if (p11_kit_uri_set_attribute(p, &a) != P11_KIT_URI_OK)
		goto out;
	if (id != NULL && id_len > 0) {
		a.type = CKA_ID;
		a.pValue = (void *)id;
		a.ulValueLen = id_len;
		if (p11_kit_uri_set_attribute(p, &a) != P11_KIT_URI_OK)
			goto out;
	}
	a.type = CKA_CLASS;
	a.pValue = &cls;
	a.ulValueLen = sizeof(cls);
	if (p11_kit_uri_set_attribute(p, &a) != P11_KIT_URI_OK)
		goto out;
	if (p11_kit_uri_format(p, token_label != NULL ? P11_KIT_URI_FOR_OBJECT_ON_TOKEN :
	                       P11_KIT_URI_FOR_OBJECT, &s) != P11_KIT_URI_OK)
		s = NULL;
out:
	if (p != NULL)
		p11_kit_uri_free(p);
	return s;
}
