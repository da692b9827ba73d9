/*
 * libregsign-hsm: loading the module, finding the token, the pool's sessions
 * and the login with a PIN from the pin file.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pkcs11/hsm_impl.h"

int hsm__module_load(struct hsm *h)
{
	CK_C_GetFunctionList get_list;
	void *sym;
	CK_RV rv;

	/* A relative path would be looked up in the library search path and
	 * could load a module nobody reviewed. */
	if (h->module_path[0] != '/')
		return hsm__fail(h, HSM_ERR_MODULE, "module path must be absolute");
	h->dl = dlopen(h->module_path, RTLD_NOW | RTLD_LOCAL);
	if (h->dl == NULL)
		return hsm__fail(h, HSM_ERR_MODULE, "cannot load %s: %s", h->module_path,
		                 dlerror());
	sym = dlsym(h->dl, "C_GetFunctionList");
	if (sym == NULL)
		return hsm__fail(h, HSM_ERR_MODULE, "%s has no C_GetFunctionList",
		                 h->module_path);
	/* POSIX guarantees that a dlsym result converts to a function pointer. */
	memcpy(&get_list, &sym, sizeof(get_list));
	rv = get_list(&h->p11);
	if (rv != CKR_OK || h->p11 == NULL)
		return hsm__fail(h, HSM_ERR_MODULE, "C_GetFunctionList of %s failed",
		                 h->module_path);
	if (h->p11->version.major != 2)
		return hsm__fail(h, HSM_ERR_MODULE, "%s speaks PKCS#11 %u.%u, not 2.x",
		                 h->module_path, h->p11->version.major,
		                 h->p11->version.minor);
	return 0;
}

void hsm__module_unload(struct hsm *h)
{
	if (h->dl != NULL)
		dlclose(h->dl);
	h->dl = NULL;
	h->p11 = NULL;
}

int hsm__module_init(struct hsm *h)
{
	CK_C_INITIALIZE_ARGS args;
	CK_RV rv;

	/* Our threads call the module concurrently (on different sessions):
	 * the module must lock with the OS's primitives. */
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	rv = h->p11->C_Initialize(&args);
	if (rv == CKR_OK) {
		h->initialized = true;
		return 0;
	}
	/* Someone else in this process initialised it; it is not ours to
	 * finalise at close. */
	if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED)
		return 0;
	hsm__fail_rv(h, "C_Initialize", rv);
	return hsm__rv_to_err(rv) == HSM_ERR_UNAVAILABLE ? HSM_ERR_UNAVAILABLE : HSM_ERR_MODULE;
}

void hsm__module_finalize(struct hsm *h, bool force)
{
	if (h->p11 != NULL && (h->initialized || force))
		h->p11->C_Finalize(NULL);
	h->initialized = false;
}

/* Reads the pin file into one locked, never-dumped page, logs in and wipes
 * the page: the PIN exists in this process only for the length of C_Login. */
static int hsm_login(struct hsm *h, CK_SESSION_HANDLE s)
{
	long page = sysconf(_SC_PAGESIZE);
	unsigned char *buf = MAP_FAILED;
	bool locked = false;
	size_t n = 0;
	struct stat st;
	int fd = -1, r = HSM_ERR_NOMEM;
	CK_RV rv;

	if (page < HSM_PIN_MAX + 2)
		page = 4096;
	buf = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE,
	           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		r = hsm__fail(h, HSM_ERR_NOMEM, "login: cannot map a page for the PIN");
		goto out;
	}
	if (mlock(buf, (size_t)page) != 0) {
		r = hsm__fail(h, HSM_ERR_NOMEM, "login: mlock: %s", strerror(errno));
		goto out;
	}
	locked = true;
	madvise(buf, (size_t)page, MADV_DONTDUMP);
	fd = open(h->pin_file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = hsm__fail(h, HSM_ERR_PIN_FILE, "pin file %s: %s", h->pin_file,
		              strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		r = hsm__fail(h, HSM_ERR_PIN_FILE, "pin file %s: not a regular file",
		              h->pin_file);
		goto out;
	}
	if (st.st_mode & S_IRWXO) {
		r = hsm__fail(h, HSM_ERR_PIN_FILE, "pin file %s: open to others (mode %o)",
		              h->pin_file, (unsigned)(st.st_mode & 07777));
		goto out;
	}
	/* Plain read(2) into the locked page: stdio would leave a copy of the
	 * PIN in its own heap buffer. */
	for (;;) {
		ssize_t got = read(fd, buf + n, HSM_PIN_MAX + 1 - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = hsm__fail(h, HSM_ERR_PIN_FILE, "pin file %s: %s", h->pin_file,
			              strerror(errno));
			goto out;
		}
		if (got == 0)
			break;
		n += (size_t)got;
		if (n > HSM_PIN_MAX) {
			r = hsm__fail(h, HSM_ERR_PIN_FILE, "pin file %s: longer than %d bytes",
			              h->pin_file, HSM_PIN_MAX);
			goto out;
		}
	}
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if (n == 0) {
		r = hsm__fail(h, HSM_ERR_PIN_FILE, "pin file %s: empty", h->pin_file);
		goto out;
	}
	rv = h->p11->C_Login(s, CKU_USER, buf, n);
	explicit_bzero(buf, (size_t)page);
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
		r = hsm__fail_rv(h, "C_Login", rv);
		goto out;
	}
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	if (buf != MAP_FAILED) {
		explicit_bzero(buf, (size_t)page);
		if (locked)
			munlock(buf, (size_t)page);
		munmap(buf, (size_t)page);
	}
	return r;
}

/* PKCS#11 labels are blank-padded to 32 bytes; the error messages and the
 * key URIs want the plain text. */
static void hsm_label_copy(char dst[33], const unsigned char src[32])
{
	size_t n = 32;

	while (n > 0 && (src[n - 1] == ' ' || src[n - 1] == '\0'))
		n--;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Finds the one initialised token the URI names. */
static int hsm_token_find(struct hsm *h)
{
	CK_SLOT_ID *slots = NULL;
	CK_ULONG n = 0, matches = 0;
	CK_SLOT_INFO si;
	CK_TOKEN_INFO ti;
	CK_RV rv;
	int r;

	rv = h->p11->C_GetInfo(&h->module_info);
	if (rv != CKR_OK) {
		r = hsm__fail_rv(h, "C_GetInfo", rv);
		goto out;
	}
	/* The list can grow between the two calls (a token plugged in). */
	for (int tries = 0;; tries++) {
		rv = h->p11->C_GetSlotList(CK_TRUE, NULL, &n);
		if (rv != CKR_OK) {
			r = hsm__fail_rv(h, "C_GetSlotList", rv);
			goto out;
		}
		if (n == 0) {
			r = hsm__fail(h, HSM_ERR_TOKEN, "no token present");
			goto out;
		}
		free(slots);
		slots = calloc(n, sizeof(*slots));
		if (slots == NULL) {
			r = hsm__fail(h, HSM_ERR_NOMEM, "out of memory");
			goto out;
		}
		rv = h->p11->C_GetSlotList(CK_TRUE, slots, &n);
		if (rv == CKR_OK)
			break;
		if (rv != CKR_BUFFER_TOO_SMALL || tries == 3) {
			r = hsm__fail_rv(h, "C_GetSlotList", rv);
			goto out;
		}
	}
	for (CK_ULONG i = 0; i < n; i++) {
		/* A slot whose token vanished in between is simply not it. */
		if (h->p11->C_GetSlotInfo(slots[i], &si) != CKR_OK ||
		    h->p11->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue;
		if (!(ti.flags & CKF_TOKEN_INITIALIZED))
			continue;
		if (!hsm_uri_match_token(h->token, &h->module_info, slots[i], &si, &ti))
			continue;
		if (matches++ == 0) {
			h->slot = slots[i];
			h->slot_info = si;
			h->token_info = ti;
		}
	}
	if (matches == 0) {
		r = hsm__fail(h, HSM_ERR_TOKEN, "no token matches the token URI");
		goto out;
	}
	if (matches > 1) {
		r = hsm__fail(h, HSM_ERR_TOKEN, "%lu tokens match the token URI",
		              (unsigned long)matches);
		goto out;
	}
	hsm_label_copy(h->token_label, h->token_info.label);
	/* Trying a locked PIN again only adds to the failure count. */
	if (h->token_info.flags & CKF_USER_PIN_LOCKED) {
		r = hsm__fail(h, HSM_ERR_PIN, "token %s: user PIN locked", h->token_label);
		goto out;
	}
	r = 0;
out:
	free(slots);
	return r;
}

int hsm__token_connect(struct hsm *h)
{
	unsigned i;
	CK_RV rv;
	int r;

	r = hsm_token_find(h);
	if (r != 0)
		return r;
	for (i = 0; i < h->nsess; i++) {
		/* Read-write sessions, so that the same pool serves the key
		 * ceremony's key generation. */
		rv = h->p11->C_OpenSession(h->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
		                           NULL, NULL, &h->sess[i]);
		if (rv != CKR_OK) {
			r = hsm__fail_rv(h, "C_OpenSession", rv);
			goto out;
		}
	}
	/* The login belongs to the application, not to one session: one
	 * C_Login covers the whole pool. */
	r = hsm_login(h, h->sess[0]);
	if (r != 0)
		goto out;
	h->sess_open = true;
	r = 0;
out:
	if (r != 0) {
		while (i-- > 0)
			h->p11->C_CloseSession(h->sess[i]);
	}
	return r;
}

void hsm__token_disconnect(struct hsm *h)
{
	if (!h->sess_open)
		return;
	/* Errors are ignored: after a loss the handles are already invalid,
	 * and closing is all that is left to do with them. The signing
	 * sessions go first: their operations may use the copies that the
	 * pool sessions own. */
	hsm__ahead_close_all(h);
	for (unsigned i = 0; i < h->nsess; i++)
		h->p11->C_CloseSession(h->sess[i]);
	h->sess_open = false;
	/* The token destroyed each session's copies with the session. */
	hsm__copies_forget(h);
	for (unsigned i = 0; i < h->nsess; i++)
		h->busy[i] = false;
}
