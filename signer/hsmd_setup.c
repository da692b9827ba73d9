/*
 * hsmd_setup.c: the HSM process's start-up (see hsmd.h): its configuration, the registry
 * zone from the policy, the issuing CA certificate, the limits, the token and its keys
 * (each key's public half checked against the limits, the issuing key against the CA
 * certificate), and the sandbox applied before any thread starts. Serving is in hsmd.c.
 */
#include "signer/hsmd_int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "policy/policy.h"
#include "policy/yconf.h"
#include "signer/sandbox.h"

/* ---- start-up ---------------------------------------------------------------------- */

/*
 * The registry zone, from the policy file. The HSM process loads the whole policy (and
 * so refuses to start on one the front would refuse too) but keeps only the zone name:
 * its limits are fixed for its lifetime, whatever a later policy reload says.
 */
static int zone_from_policy(const char *path, char *zone, size_t len, char *err, size_t errlen)
{
	struct policy *pol = NULL;
	const struct policy_zone *z;
	int r = -1;

	if (policy_load(path, &pol, err, errlen) != YCONF_OK)
		goto out;
	z = policy_zone(pol);
	if (z == NULL || z->name == NULL || strlen(z->name) >= len) {
		snprintf(err, errlen, "%s: no usable zone.name", path);
		goto out;
	}
	snprintf(zone, len, "%s", z->name);
	r = 0;
out:
	policy_free(pol);
	return r;
}

/* Reads the issuing CA certificate: its subject name DER and its SPKI DER. */
static int read_issuer(const char *path, uint8_t **name, size_t *name_len, uint8_t **spki,
                       size_t *spki_len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	X509 *cert = NULL;
	unsigned char *p = NULL;
	int n, r = -1;

	*name = *spki = NULL;
	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	cert = PEM_read_X509(f, NULL, NULL, NULL);
	if (cert == NULL) {
		snprintf(err, errlen, "%s: not a PEM certificate", path);
		goto out;
	}
	n = i2d_X509_NAME(X509_get_subject_name(cert), &p);
	if (n <= 0)
		goto fail;
	*name = p;
	*name_len = (size_t)n;
	p = NULL;
	n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &p);
	if (n <= 0)
		goto fail;
	*spki = p;
	*spki_len = (size_t)n;
	r = 0;
	goto out;
fail:
	snprintf(err, errlen, "%s: cannot encode the certificate's name or key", path);
	OPENSSL_free(*name);
	*name = NULL;
out:
	X509_free(cert);
	if (f)
		fclose(f);
	return r;
}

/* Opens the token, finds every key, tells the limits their public keys. */
static int open_keys(struct hsmd *d, const uint8_t *ca_spki, size_t ca_spki_len, char *err,
                     size_t errlen)
{
	struct hsm_config hc = {
		.module_path = d->cfg->hsm.module,
		.token_uri = d->cfg->hsm.token,
		.pin_file = d->cfg->hsm.pin_file,
		.sessions = d->cfg->hsm.sessions,
		.recover_timeout_ms = d->cfg->hsm.recover_timeout_ms,
		.session_copies = d->cfg->hsm.key_copies,
		.copy_check_ms = d->cfg->hsm.key_check_ms,
		.sign_ahead = d->cfg->hsm.sign_ahead,
		.errbuf = err,
		.errbuf_len = errlen,
	};
	int e;

	e = hsm_open(&hc, &d->hsm);
	if (e != HSM_OK) {
		if (err[0] == '\0')
			snprintf(err, errlen, "%s", hsm_strerror(e));
		return -1;
	}
	d->roles = calloc(d->cfg->n_keys ? d->cfg->n_keys : 1, sizeof(*d->roles));
	if (d->roles == NULL)
		return -1;
	for (size_t i = 0; i < d->cfg->n_keys; i++) {
		const struct config_key *k = &d->cfg->keys[i];
		struct role *role = &d->roles[d->n_roles];
		unsigned char *spki = NULL;
		size_t len = 0;

		snprintf(role->name, sizeof(role->name), "%s", k->role);
		e = hsm_key_add(d->hsm, k->role, k->uri, &role->key_id);
		if (e == HSM_OK)
			e = hsm_key_public(d->hsm, role->key_id, &spki, &len);
		if (e != HSM_OK) {
			snprintf(err, errlen, "key %s (%s): %s: %s", k->role, k->uri, hsm_strerror(e),
			         hsm_last_error(d->hsm));
			return -1;
		}
		d->n_roles++;
		e = hsmlimits_key_set(d->limits, k->role, spki, len);
		EVP_Digest(spki, len, role->fingerprint, NULL, EVP_sha256(), NULL);
		/* The issuing CA certificate must certify the very key the HSM holds. */
		if (e == 0 && strcmp(k->role, HSMLIMITS_ROLE_ISSUING_CA) == 0 &&
		    (len != ca_spki_len || memcmp(spki, ca_spki, len) != 0)) {
			snprintf(err, errlen, "key %s does not match the public key of %s", k->role,
			         d->cfg->ca.issuing_certificate);
			e = -1;
		} else if (e != 0) {
			snprintf(err, errlen, "key %s: %s", k->role, hsmlimits_strerror(e));
		}
		free(spki);
		if (e != 0)
			return -1;
	}
	return 0;
}

int hsmd__setup(struct hsmd *d, const char *config_path, const char *const *module_dirs,
                char *err, size_t errlen)
{
	struct config_load_opts opts = { .module_dirs = module_dirs };
	uint8_t *name = NULL, *ca_spki = NULL;
	size_t name_len = 0, ca_spki_len = 0;
	char zone[256], *cerr = NULL;
	int e, r = -1;

	e = config_load(config_path, &opts, &d->cfg, &cerr);
	if (e != CONFIG_OK) {
		snprintf(err, errlen, "%s", cerr ? cerr : config_strerror(e));
		goto out;
	}
	/* Loading the module and logging in are PKCS#11 calls too, made before any
	 * thread may exist: SIGALRM's default action ends a start-up that hangs. */
	if (d->cfg->hsm.call_timeout_ms > 0)
		alarm((d->cfg->hsm.call_timeout_ms + 999) / 1000);
	/* SoftHSM and friends read their configuration from the environment. */
	for (size_t i = 0; i < d->cfg->hsm.n_env; i++) {
		if (setenv(d->cfg->hsm.env[i].name, d->cfg->hsm.env[i].value, 1) != 0) {
			snprintf(err, errlen, "setenv %s failed", d->cfg->hsm.env[i].name);
			goto out;
		}
	}
	if (zone_from_policy(d->cfg->policy, zone, sizeof(zone), err, errlen) != 0 ||
	    read_issuer(d->cfg->ca.issuing_certificate, &name, &name_len, &ca_spki,
	                &ca_spki_len, err, errlen) != 0)
		goto out;
	{
		struct hsmlimits_config lc = {
			.zone = zone,
			.issuer_name_der = name,
			.issuer_name_len = name_len,
			.max_validity = (int64_t)d->cfg->ca.max_validity,
		};

		e = hsmlimits_new(&lc, &d->limits);
		if (e != 0) {
			snprintf(err, errlen, "limits for zone %.200s: %s", zone, hsmlimits_strerror(e));
			goto out;
		}
	}
	for (size_t i = 0; i < d->cfg->n_extra_zones; i++) {
		e = hsmlimits_zone_add(d->limits, d->cfg->extra_zones[i].name);
		if (e != 0) {
			snprintf(err, errlen, "extra zone %s: %s (the registry zone itself?)",
			         d->cfg->extra_zones[i].name, hsmlimits_strerror(e));
			goto out;
		}
	}
	if (open_keys(d, ca_spki, ca_spki_len, err, errlen) != 0)
		goto out;
	r = 0;
out:
	alarm(0);
	free(cerr);
	OPENSSL_free(name);
	OPENSSL_free(ca_spki);
	return r;
}

/*
 * Applies the HSM profile of the sandbox (signer/sandbox.h) from the
 * configuration. Called with the module loaded and logged in and before any
 * thread exists. @return 0, or -1 with the reason in @p err.
 */
int hsmd__lockdown(struct hsmd *d, const char *config_path, const char *const *module_dirs,
                   char *err, size_t errlen)
{
	sandbox_t *sb = NULL;
	char abs[PATH_MAX], why[256] = "";
	int e;

	if (!d->cfg->sandbox.enabled)
		return 0;
	if (realpath(config_path, abs) == NULL) {
		snprintf(err, errlen, "sandbox: %s: %s", config_path, strerror(errno));
		return -1;
	}
	e = sandbox_from_config(SANDBOX_PROFILE_HSM, d->cfg, abs, module_dirs, &sb);
	if (e == SANDBOX_OK)
		e = sandbox_apply(sb, why, sizeof(why));
	sandbox_free(sb);
	if (e != SANDBOX_OK) {
		snprintf(err, errlen, "sandbox: %s%s%s", sandbox_strerror(e), why[0] ? ": " : "",
		         why);
		return -1;
	}
	return 0;
}
