/**
 * @file dns_err.h
 * @brief The one error enum of libregsign-dns (the DNS listener of regsignd).
 *
 * Every function of the library that can fail returns 0 (DNS_OK) or one of
 * these negative values; dns_strerror() names them for the daemon's log.
 */
#ifndef REGSIGN_SIGNER_DNS_ERR_H
#define REGSIGN_SIGNER_DNS_ERR_H

enum dns_err {
	DNS_OK = 0,
	DNS_ENOMEM = -1,    /**< an allocation failed */
	DNS_EINVAL = -2,    /**< an argument is malformed or out of range */
	DNS_ENOENT = -3,    /**< not present (journal: no diff starts at that serial) */
	DNS_EFORMAT = -4,   /**< a packet or a stored diff is malformed */
	DNS_ELDNS = -5,     /**< ldns failed to format or sign a packet */
	DNS_EZONE = -6,     /**< the zone library failed or the zone has no SOA yet */
	DNS_EIO = -7,       /**< a socket operation failed (libuv) */
	DNS_ECHANGED = -8,  /**< the zone changed while a transfer was streaming it */
	DNS_ESTATE = -9,    /**< the object is not in a state that allows this */
	DNS_ERANGE = -10,   /**< a size limit was exceeded (message, journal chain) */
};

/**
 * @brief Describe an error code.
 * @return a static string; never NULL (unknown codes get a generic text).
 */
const char *dns_strerror(int err);

#endif
