/**
 * @file zone_ldns.h
 * @brief Include ldns under OPENSSL_NO_DEPRECATED.
 *
 * ldns 1.8.3's headers declare functions taking RSA and DSA pointers, types
 * that OpenSSL 3 hides when deprecated API is disabled (as this project
 * builds). Declaring the two opaque struct names lets the headers parse; no
 * deprecated function is ever called through them. Include this instead of
 * <ldns/ldns.h> everywhere in zonesigner and its tests.
 */
#ifndef REGSIGN_ZONE_LDNS_H
#define REGSIGN_ZONE_LDNS_H

#include <openssl/types.h>

typedef struct rsa_st RSA;
typedef struct dsa_st DSA;

#include <ldns/ldns.h>

#endif
