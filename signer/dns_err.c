/* Error texts of libregsign-dns. */
#include "signer/dns_err.h"

const char *dns_strerror(int err)
{
	switch (err) {
	case DNS_OK: return "success";
	case DNS_ENOMEM: return "out of memory";
	case DNS_EINVAL: return "invalid argument";
	case DNS_ENOENT: return "not found";
	case DNS_EFORMAT: return "malformed packet or data";
	case DNS_ELDNS: return "ldns failed to format or sign a packet";
	case DNS_EZONE: return "zone unavailable or zone library error";
	case DNS_EIO: return "socket error";
	case DNS_ECHANGED: return "zone changed during a transfer";
	case DNS_ESTATE: return "wrong state for this operation";
	case DNS_ERANGE: return "size limit exceeded";
	default: return "unknown DNS listener error";
	}
}
