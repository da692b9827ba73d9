/*
 * seedgen: writes the seed corpora of the fuzz targets from regsign's own
 * encoders, so that every seed is a valid input of today's formats:
 *
 * Each goes to OUT/fuzz_<target>/seed-<name>:
 *   OUT/csr/       PKCS#10 requests made by OpenSSL (P-256, P-384, RSA)
 *   OUT/tbs/       a device TBSCertificate and a TBSCertList from libregsign-x509
 *                  (first byte 0 = certificate check, 1 = CRL check), and a CA TBS
 *   OUT/proto/     every signing-socket request and the main replies (signer/proto)
 *   OUT/hsmproto/  HSM-process frames: SIGN of a TBS and of a CRL, PUBKEY, RANDOM,
 *                  STATUS and their replies (signer/hsmproto)
 *   OUT/audit/     a chained audit file from audit_record_format
 *
 * The issuing CA is "CN=Fuzz CA" under zone iotregistry.test., as fuzz_tbs and
 * fuzz_hsmproto expect. Usage: seedgen OUT (tests/fuzz/run.sh --seeds runs it).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "signer/audit_record.h"
#include "signer/buf.h"
#include "signer/csr.h"
#include "signer/hsmproto.h"
#include "signer/proto.h"
#include "signer/x509.h"

#define ZONE "iotregistry.test."
#define DEVICE "8912230200031010008f"

static const char *outdir;

static void die(const char *what)
{
	fprintf(stderr, "seedgen: %s\n", what);
	exit(1);
}

static void put(const char *target, const char *name, const void *data, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/fuzz_%s", outdir, target);
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
		die(path);
	snprintf(path, sizeof(path), "%s/fuzz_%s/seed-%s", outdir, target, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0)
		die(path);
}

static EVP_PKEY *ec_key(const char *curve)
{
	EVP_PKEY *k = EVP_EC_gen(curve);

	if (k == NULL)
		die("EC key generation");
	return k;
}

static unsigned char *csr_der(EVP_PKEY *key, size_t *len)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *n = X509_NAME_new();
	unsigned char *der = NULL;
	int l;

	if (req == NULL || n == NULL || X509_REQ_set_version(req, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
				       (const unsigned char *)"device " DEVICE, -1, -1, 0) != 1 ||
	    X509_REQ_set_subject_name(req, n) != 1 || X509_REQ_set_pubkey(req, key) != 1 ||
	    X509_REQ_sign(req, key, EVP_sha256()) <= 0 || (l = i2d_X509_REQ(req, &der)) <= 0)
		die("CSR");
	*len = (size_t)l;
	X509_NAME_free(n);
	X509_REQ_free(req);
	return der;
}

struct pki {
	EVP_PKEY *root_key, *ca_key, *dev_key;
	X509 *root, *ca;
	unsigned char *csr, *tbs, *crl_tbs, *ca_tbs, *cert;
	size_t csr_len, tbs_len, crl_tbs_len, ca_tbs_len, cert_len;
};

static X509 *make_ca(const struct x509_cert_spec *spec, EVP_PKEY *signer)
{
	X509 *c = NULL;

	if (x509_cert_create(spec, x509_sign_with_pkey, signer, &c) != X509_OK)
		die("CA certificate");
	return c;
}

static void gen_pki(struct pki *p)
{
	struct x509_cert_spec s;
	X509_NAME *root_name = NULL, *ca_name = NULL;
	struct x509_crl_entry entries[2];
	struct x509_crl_spec crl;
	unsigned char serial2[3] = { 0x01, 0x02, 0x03 };
	X509 *dev = NULL;

	p->root_key = ec_key("P-256");
	p->ca_key = ec_key("P-256");
	p->dev_key = ec_key("P-256");
	if (x509_name_parse("/CN=Fuzz Root", &root_name) != X509_OK ||
	    x509_name_parse("/CN=Fuzz CA", &ca_name) != X509_OK)
		die("names");
	memset(&s, 0, sizeof(s));
	s.profile = X509_PROFILE_ROOT;
	s.not_before = 1700000000;
	s.not_after = 1700000000 + 20LL * 365 * 86400;
	s.subject_key = p->root_key;
	s.subject = root_name;
	if (x509_serial_random(s.serial) != X509_OK)
		die("serial");
	p->root = make_ca(&s, p->root_key);
	s.profile = X509_PROFILE_ISSUING;
	s.subject_key = p->ca_key;
	s.issuer = p->root;
	s.subject = ca_name;
	s.zone = ZONE;
	p->ca = make_ca(&s, p->root_key);
	/* A CA TBS issued by the issuing CA: what its key must never sign. */
	s.issuer = p->ca;
	s.subject_key = p->dev_key;
	s.not_after = s.not_before + 90LL * 86400;
	if (x509_cert_tbs_build(&s, &p->ca_tbs, &p->ca_tbs_len) != X509_OK)
		die("CA TBS");

	memset(&s, 0, sizeof(s));
	s.profile = X509_PROFILE_DEVICE;
	s.not_before = 1760000000;
	s.not_after = 1760000000 + 90LL * 86400;
	s.subject_key = p->dev_key;
	s.issuer = p->ca;
	s.zone = ZONE;
	s.index = 1;
	s.device_id = DEVICE;
	s.crl_uri = "http://crl.iotregistry.test/issuing.crl";
	if (x509_serial_random(s.serial) != X509_OK ||
	    x509_cert_tbs_build(&s, &p->tbs, &p->tbs_len) != X509_OK ||
	    x509_cert_create(&s, x509_sign_with_pkey, p->ca_key, &dev) != X509_OK ||
	    x509_cert_der(dev, &p->cert, &p->cert_len) != X509_OK)
		die("device certificate");

	entries[0] = (struct x509_crl_entry){ s.serial, sizeof(s.serial), 1760001000, 1 };
	entries[1] = (struct x509_crl_entry){ serial2, sizeof(serial2), 1760002000, -1 };
	memset(&crl, 0, sizeof(crl));
	crl.issuer = p->ca;
	crl.this_update = 1760003000;
	crl.next_update = 1760003000 + 86400;
	crl.number = 7;
	crl.entries = entries;
	crl.n_entries = 2;
	if (x509_crl_tbs_build(&crl, &p->crl_tbs, &p->crl_tbs_len) != X509_OK)
		die("CRL TBS");
	p->csr = csr_der(p->dev_key, &p->csr_len);
	X509_free(dev);
	X509_NAME_free(root_name);
	X509_NAME_free(ca_name);
}

static void gen_csr(const struct pki *p)
{
	EVP_PKEY *p384 = ec_key("P-384"), *rsa = EVP_RSA_gen(2048);
	unsigned char *der;
	size_t len;

	put("csr", "p256", p->csr, p->csr_len);
	der = csr_der(p384, &len);
	put("csr", "p384", der, len);
	OPENSSL_free(der);
	if (rsa == NULL)
		die("RSA key");
	der = csr_der(rsa, &len);
	put("csr", "rsa2048", der, len);
	OPENSSL_free(der);
	EVP_PKEY_free(p384);
	EVP_PKEY_free(rsa);
}

/* A selector byte then the TBS, as fuzz_tbs reads it. */
static void put_tbs(const char *name, unsigned char sel, const unsigned char *tbs, size_t len)
{
	unsigned char *b = malloc(len + 1);

	if (b == NULL)
		die("memory");
	b[0] = sel;
	memcpy(b + 1, tbs, len);
	put("tbs", name, b, len + 1);
	free(b);
}

static void put_request(const char *name, struct proto_request *q)
{
	struct buf_writer w;

	buf_writer_init(&w, PROTO_REQUEST_MAX);
	if (proto_request_encode(&w, q) != PROTO_OK)
		die(name);
	put("proto", name, buf_writer_data(&w), buf_writer_len(&w));
	buf_writer_release(&w);
}

static void put_reply(const char *name, struct proto_reply *r)
{
	struct buf_writer w;

	buf_writer_init(&w, PROTO_REPLY_MAX);
	if (proto_reply_encode(&w, r) != PROTO_OK)
		die(name);
	put("proto", name, buf_writer_data(&w), buf_writer_len(&w));
	buf_writer_release(&w);
}

#define BYTES(s) ((struct proto_bytes){ (const uint8_t *)(s), strlen(s) })

static void gen_proto(const struct pki *p)
{
	struct proto_request q;
	struct proto_reply r;
	static const uint8_t rrset[] = {
		/* asp.test. TXT IN 300 "hello" in wire format */
		3, 'a', 's', 'p', 4, 't', 'e', 's', 't', 0, 0, 16, 0, 1, 0, 0, 1, 44, 0, 6,
		5, 'h', 'e', 'l', 'l', 'o',
	};

	memset(&q, 0, sizeof(q));
	q.op = PROTO_OP_HELLO;
	q.id = 1;
	q.u.hello = (struct proto_hello){ 1, 1, BYTES("seedgen") };
	put_request("hello", &q);
	memset(&q, 0, sizeof(q));
	q.op = PROTO_OP_ISSUE;
	q.id = 2;
	q.u.issue = (struct proto_issue){ BYTES(DEVICE), 1, BYTES("device"),
					  { p->csr, p->csr_len } };
	put_request("issue", &q);
	memset(&q, 0, sizeof(q));
	q.op = PROTO_OP_REVOKE;
	q.id = 3;
	q.u.revoke = (struct proto_revoke){ BYTES(DEVICE), 1, BYTES(""), BYTES("keyCompromise") };
	put_request("revoke", &q);
	memset(&q, 0, sizeof(q));
	q.op = PROTO_OP_REISSUE;
	q.id = 4;
	q.u.reissue = (struct proto_reissue){ BYTES(DEVICE), 1, BYTES("device"),
					      { p->csr, p->csr_len } };
	put_request("reissue", &q);
	memset(&q, 0, sizeof(q));
	q.op = PROTO_OP_PUBLISH;
	q.id = 5;
	q.u.rr = (struct proto_rr_change){ BYTES("www._asp." ZONE), BYTES("TXT"), 300,
					   BYTES("\"hello\"") };
	put_request("publish", &q);
	q.op = PROTO_OP_UNPUBLISH;
	q.u.rr.ttl = 0;
	q.u.rr.rdata = BYTES("");
	put_request("unpublish", &q);
	memset(&q, 0, sizeof(q));
	q.op = PROTO_OP_SIGN_RRSET;
	q.id = 7;
	q.u.sign_rrset = (struct proto_sign_rrset){ BYTES("asp.test."), { rrset, sizeof(rrset) },
						    1760000000, 1760086400 };
	put_request("sign_rrset", &q);
	{
		/* IMPORT: one hash-only record and one with a certificate hash and DER. */
		static const uint8_t hash[32] = { 0x5a, 0x01, 0x02, 0x03 };
		struct proto_import_record rec;
		struct buf_writer w;

		buf_writer_init(&w, 65536);
		memset(&rec, 0, sizeof(rec));
		rec.device_id = BYTES(DEVICE);
		rec.index = 1;
		rec.cert_sha256 = (struct proto_bytes){ hash, sizeof(hash) };
		if (proto_import_record_encode(&w, &rec) != PROTO_OK)
			abort();
		rec.index = 2;
		rec.spki_sha256 = (struct proto_bytes){ hash, sizeof(hash) };
		rec.cert_der = (struct proto_bytes){ p->csr, p->csr_len };
		if (proto_import_record_encode(&w, &rec) != PROTO_OK)
			abort();
		memset(&q, 0, sizeof(q));
		q.op = PROTO_OP_IMPORT;
		q.id = 8;
		q.u.import = (struct proto_import){ 7, 1, PROTO_IMPORT_FINAL, 0,
						    { buf_writer_data(&w), buf_writer_len(&w) } };
		put_request("import", &q);
		buf_writer_release(&w);
	}
	for (uint8_t op = PROTO_OP_CRL; op <= PROTO_OP_ZONE_STATUS; op++) {
		char name[32];

		if (op == PROTO_OP_PUBLISH || op == PROTO_OP_UNPUBLISH || op == PROTO_OP_SIGN_RRSET)
			continue;
		memset(&q, 0, sizeof(q));
		q.op = op;
		q.id = 100 + op;
		snprintf(name, sizeof(name), "empty-%s", proto_op_name(op));
		put_request(name, &q);
	}

	memset(&r, 0, sizeof(r));
	r.type = PROTO_REPLY_OK;
	r.id = 2;
	r.op = PROTO_OP_ISSUE;
	r.u.cert.cert_der = (struct proto_bytes){ p->cert, p->cert_len };
	r.u.cert.chain.count = 0;
	r.u.cert.serial_hex = BYTES("0a1b2c");
	r.u.cert.zone_serial = 2025112701;
	r.u.cert.index = 1;
	put_reply("reply-issue", &r);
	memset(&r, 0, sizeof(r));
	r.type = PROTO_REPLY_ERROR;
	r.id = 3;
	r.u.error = (struct proto_error){ PROTO_CODE_DENIED, BYTES("caller may not revoke") };
	put_reply("reply-error", &r);
}

static void gen_hsmproto(const struct pki *p)
{
	struct hsmproto_buf b = { 0 };
	struct hsmproto_sign_req items[3];
	struct hsmproto_result res[2];
	static const uint8_t rnd[16] = { 1, 2, 3 };

	memset(items, 0, sizeof(items));
	strcpy(items[0].role, "issuing-ca");
	items[0].kind = HSMPROTO_KIND_TBS_CERT;
	items[0].format = HSMPROTO_FORMAT_DER;
	items[0].data = p->tbs;
	items[0].len = p->tbs_len;
	strcpy(items[1].role, "issuing-ca");
	items[1].kind = HSMPROTO_KIND_TBS_CRL;
	items[1].format = HSMPROTO_FORMAT_DER;
	items[1].data = p->crl_tbs;
	items[1].len = p->crl_tbs_len;
	strcpy(items[2].role, "issuing-ca");
	items[2].kind = HSMPROTO_KIND_TBS_CERT;
	items[2].format = HSMPROTO_FORMAT_DER;
	items[2].data = p->ca_tbs;
	items[2].len = p->ca_tbs_len;
	if (hsmproto_sign_req_encode(&b, 1, items, 3) != HSMPROTO_OK)
		die("hsmproto sign");
	put("hsmproto", "sign-tbs-crl-ca", b.data, b.len);
	hsmproto_buf_free(&b);

	if (hsmproto_pubkey_req_encode(&b, 2, "zsk") != HSMPROTO_OK)
		die("hsmproto pubkey");
	put("hsmproto", "pubkey", b.data, b.len);
	hsmproto_buf_free(&b);
	if (hsmproto_random_req_encode(&b, 3, 16) != HSMPROTO_OK)
		die("hsmproto random");
	put("hsmproto", "random", b.data, b.len);
	hsmproto_buf_free(&b);
	if (hsmproto_status_req_encode(&b, 4) != HSMPROTO_OK)
		die("hsmproto status");
	put("hsmproto", "status", b.data, b.len);
	hsmproto_buf_free(&b);

	memset(res, 0, sizeof(res));
	res[0].status = HSMPROTO_ST_OK;
	res[0].value = rnd;
	res[0].value_len = sizeof(rnd);
	res[1].status = HSMPROTO_ST_REFUSED;
	strcpy(res[1].reason, "issuing-ca signs only non-CA certificates");
	if (hsmproto_results_encode(&b, HSMPROTO_SIGN_REPLY, 1, res, 2) != HSMPROTO_OK)
		die("hsmproto results");
	put("hsmproto", "sign-reply", b.data, b.len);
	hsmproto_buf_free(&b);
	{
		struct hsmproto_role_status roles[1];
		struct hsmproto_status st = {
			.state = HSMPROTO_STATE_UP, .recoveries = 2, .key_copies = 3,
			.key_copies_refused = 1, .sign_prepared = 5, .n_roles = 1, .roles = roles,
		};

		memset(roles, 0, sizeof(roles));
		strcpy(roles[0].role, "zsk");
		roles[0].signatures = 42;
		if (hsmproto_status_encode(&b, 4, &st) != HSMPROTO_OK)
			die("hsmproto status reply");
		put("hsmproto", "status-reply", b.data, b.len);
		hsmproto_buf_free(&b);
	}
}

/* Appends one record to @p file, chained to @p prev (updated). */
static void audit_add(char *file, size_t cap, struct audit_record *r, char prev[65])
{
	char line[AUDIT_LINE_MAX + 1], why[200];
	size_t len;

	memcpy(r->prev, prev, 65);
	if (audit_record_format(r, 0, line, sizeof(line), &len) != 0) {
		audit_record_check(r, 0, why, sizeof(why));
		die(why);
	}
	audit_line_hash(line, len, prev);
	if (strlen(file) + len + 2 > cap)
		die("audit file too long");
	strcat(file, line);
	strcat(file, "\n");
}

static void gen_audit(void)
{
	static char file[16384];
	struct audit_record r;
	char prev[65];

	memset(prev, '0', 64);
	prev[64] = '\0';
	memset(&r, 0, sizeof(r));
	r.seq = 1;
	strcpy(r.time, "2025-11-27T09:18:00.123Z");
	r.type = AUDIT_T_EVENT;
	strcpy(r.event, "start");
	strcpy(r.detail, "regsignd 0.1.0");
	audit_add(file, sizeof(file), &r, prev);
	memset(&r, 0, sizeof(r));
	r.seq = 2;
	strcpy(r.time, "2025-11-27T09:18:00.124Z");
	r.type = AUDIT_T_REQUEST;
	r.uid = 1000;
	r.gid = 100;
	r.pid = 4242;
	strcpy(r.caller_name, "frontend");
	strcpy(r.op, "issue");
	strcpy(r.device, DEVICE);
	r.index = 1;
	r.n_inputs = 1;
	strcpy(r.inputs[0].name, "csr");
	memset(r.inputs[0].sha256, 'a', 64);
	r.allow = 1;
	strcpy(r.rule, "callers.frontend.operations");
	memset(r.policy, 'b', 64);
	audit_add(file, sizeof(file), &r, prev);
	memset(&r, 0, sizeof(r));
	r.seq = 3;
	strcpy(r.time, "2025-11-27T09:18:00.125Z");
	r.type = AUDIT_T_RESULT;
	r.ref = 2;
	strcpy(r.op, "issue");
	strcpy(r.serial, "0a1b");
	memset(r.cert, 'c', 64);
	r.has_zone_serial = 1;
	r.zone_serial = 2025112701;
	audit_add(file, sizeof(file), &r, prev);
	put("audit", "chain", file, strlen(file));
}

static void pki_free(struct pki *p)
{
	EVP_PKEY_free(p->root_key);
	EVP_PKEY_free(p->ca_key);
	EVP_PKEY_free(p->dev_key);
	X509_free(p->root);
	X509_free(p->ca);
	OPENSSL_free(p->csr);
	free(p->tbs);
	free(p->crl_tbs);
	free(p->ca_tbs);
	free(p->cert);
}

int main(int argc, char **argv)
{
	struct pki p;

	if (argc != 2)
		die("usage: seedgen OUTDIR");
	outdir = argv[1];
	if (mkdir(outdir, 0755) != 0 && errno != EEXIST)
		die(outdir);
	memset(&p, 0, sizeof(p));
	gen_pki(&p);
	gen_csr(&p);
	put_tbs("device", 0, p.tbs, p.tbs_len);
	put_tbs("crl", 1, p.crl_tbs, p.crl_tbs_len);
	put_tbs("ca", 0, p.ca_tbs, p.ca_tbs_len);
	gen_proto(&p);
	gen_hsmproto(&p);
	gen_audit();
	pki_free(&p);
	return 0;
}
