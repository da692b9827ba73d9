/**
 * @file zone_dnskey.h
 * @brief DNSKEY and DS records for ECDSA P-256 keys (DNSSEC algorithm 13).
 *
 * Used by the key ceremony (DNSKEY/DS output for the parent zone) and by the
 * zone itself (key tags in RRSIG data, the apex DNSKEY RRset). The key is
 * given as its public half only: an SPKI in DER or an OpenSSL EVP_PKEY; the
 * private key stays in the HSM.
 */
#ifndef REGSIGN_ZONE_DNSKEY_H
#define REGSIGN_ZONE_DNSKEY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#define ZONE_DNSKEY_FLAGS_ZSK 256   /**< Zone Key bit only */
#define ZONE_DNSKEY_FLAGS_KSK 257   /**< Zone Key + Secure Entry Point */
#define ZONE_DNSKEY_PROTOCOL 3
#define ZONE_DNSKEY_ALG 13          /**< ECDSAP256SHA256 */
#define ZONE_DNSKEY_PUBKEY_LEN 64   /**< x || y, 32 bytes each */
#define ZONE_DNSKEY_RDATA_LEN 68    /**< flags(2) protocol(1) alg(1) key(64) */
#define ZONE_DS_DIGEST_SHA256 2
#define ZONE_DS_DIGEST_LEN 32

/** A DNSSEC public key of algorithm 13 with its flags and key tag. */
struct zone_dnskey {
	uint16_t flags;                        /**< 256 (ZSK) or 257 (KSK) */
	uint16_t key_tag;                      /**< RFC 4034 Appendix B */
	uint8_t pubkey[ZONE_DNSKEY_PUBKEY_LEN]; /**< uncompressed point without 0x04 */
};

/**
 * @brief Make a DNSKEY from an SPKI (SubjectPublicKeyInfo) in DER.
 * @param flags 256 or 257 (other values: ZONE_EINVAL).
 * @return 0, ZONE_EINVAL (bad flags or DER), ZONE_EKEY (not EC P-256).
 */
int zone_dnskey_from_spki(const uint8_t *der, size_t len, uint16_t flags,
			  struct zone_dnskey *out);

/**
 * @brief Make a DNSKEY from an OpenSSL key (only its public half is read;
 * the caller keeps ownership of @p pkey).
 * @return 0, ZONE_EINVAL, ZONE_EKEY.
 */
int zone_dnskey_from_pkey(const EVP_PKEY *pkey, uint16_t flags, struct zone_dnskey *out);

/**
 * @brief Parse DNSKEY RDATA (wire form, 68 bytes, protocol 3, algorithm 13).
 * @return 0, ZONE_EFORMAT (wrong length, protocol or algorithm).
 */
int zone_dnskey_from_rdata(const uint8_t *rdata, size_t len, struct zone_dnskey *out);

/** @brief Write the 68-byte DNSKEY RDATA of @p k to @p out. Cannot fail. */
void zone_dnskey_rdata(const struct zone_dnskey *k, uint8_t out[ZONE_DNSKEY_RDATA_LEN]);

/**
 * @brief The SHA-256 DS digest: SHA-256(canonical owner name || DNSKEY RDATA).
 * @param owner the zone's name in presentation form ("iotregistry.test.").
 * @return 0, ZONE_EINVAL (bad owner name), ZONE_ENOMEM.
 */
int zone_dnskey_ds_digest(const struct zone_dnskey *k, const char *owner,
			  uint8_t out[ZONE_DS_DIGEST_LEN]);

/**
 * @brief The DNSKEY resource record in presentation form, one line ending
 * in a newline, e.g. "iotregistry.test.\t3600\tIN\tDNSKEY\t257 3 13 <base64>".
 * @param out receives a string the caller releases with free().
 * @return 0, ZONE_EINVAL (bad owner name), ZONE_ENOMEM, ZONE_ELDNS.
 */
int zone_dnskey_rr_text(const struct zone_dnskey *k, const char *owner, uint32_t ttl,
			char **out);

/**
 * @brief The DS record (digest type 2, SHA-256) of @p k in presentation form,
 * one line ending in a newline: "<owner> <ttl> IN DS <tag> 13 2 <hex>".
 * @param out receives a string the caller releases with free().
 * @return 0, ZONE_EINVAL, ZONE_ENOMEM, ZONE_ELDNS.
 */
int zone_dnskey_ds_text(const struct zone_dnskey *k, const char *owner, uint32_t ttl,
			char **out);

#endif
