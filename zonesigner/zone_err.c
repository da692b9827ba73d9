/* Error names of libregsign-zone. */
#include "zonesigner/zone_err.h"

const char *zone_strerror(int err)
{
	switch (err) {
	case ZONE_OK: return "success";
	case ZONE_ENOMEM: return "out of memory";
	case ZONE_EINVAL: return "invalid argument";
	case ZONE_EEXIST: return "already present";
	case ZONE_ENOENT: return "not present";
	case ZONE_ESIGN: return "signing failed";
	case ZONE_ECHECK: return "zone self-check failed";
	case ZONE_EIO: return "input/output error";
	case ZONE_EKEY: return "not an EC P-256 public key";
	case ZONE_ERESERVED: return "name is in the reserved device namespace";
	case ZONE_ESTATE: return "operation not allowed in this zone state";
	case ZONE_EFORMAT: return "malformed stored or wire data";
	case ZONE_ELDNS: return "ldns could not parse or format the data";
	case ZONE_ERANGE: return "size limit exceeded";
	default: return "unknown zone error";
	}
}
