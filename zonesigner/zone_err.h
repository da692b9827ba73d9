/**
 * @file zone_err.h
 * @brief The one error enum of libregsign-zone.
 *
 * Every function of the library that can fail returns 0 (ZONE_OK) or one of
 * these negative values; zone_strerror() names them for the daemon's log.
 */
#ifndef REGSIGN_ZONE_ERR_H
#define REGSIGN_ZONE_ERR_H

enum zone_err {
	ZONE_OK = 0,
	ZONE_ENOMEM = -1,    /**< an allocation failed */
	ZONE_EINVAL = -2,    /**< an argument is malformed or out of range */
	ZONE_EEXIST = -3,    /**< the name or record is already present */
	ZONE_ENOENT = -4,    /**< the name or record is not present */
	ZONE_ESIGN = -5,     /**< the signing callback failed or returned nonsense */
	ZONE_ECHECK = -6,    /**< the structural self-check found an inconsistency */
	ZONE_EIO = -7,       /**< a file operation failed (errno is kept) */
	ZONE_EKEY = -8,      /**< a key is not an EC P-256 public key */
	ZONE_ERESERVED = -9, /**< the name lies in the reserved device namespace */
	ZONE_ESTATE = -10,   /**< the zone is not in a state that allows this */
	ZONE_EFORMAT = -11,  /**< stored or wire data is malformed */
	ZONE_ELDNS = -12,    /**< ldns failed to parse or format data */
	ZONE_ERANGE = -13,   /**< a size limit of the zone or a name was exceeded */
};

/**
 * @brief Describe an error code.
 * @return a static string; never NULL (unknown codes get a generic text).
 */
const char *zone_strerror(int err);

#endif
