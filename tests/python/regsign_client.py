"""A client of regsignd's signing socket, standard library only.

Written from docs/PROTOCOL.md alone (not from the C code), so that tests
which use it check the daemon against the specification. Integration tests
import it; tests/python/test_codec.py checks it against the C codec.

    from regsign_client import Client, RegsignError
    with Client("/path/regsignd.sock") as c:
        r = c.issue("8912230200031010008f", 1, "device", csr_der)
        print(r["serial_hex"], r["zone_serial"])

Field values: text fields are str, byte strings are bytes, `certs` are
lists of bytes, integers are int. A refused request raises RegsignError
(with .code, .name, .message, .retryable); a malformed frame raises
ProtocolError; a closed connection raises ConnectionClosed.
"""

import socket
import struct

PROTOCOL_VERSION = 1
REQUEST_MAX = 262144          # §2: maximum request length field
REPLY_MAX = 16 * 1024 * 1024  # §2: maximum reply length field

OK = 0x80
ERROR = 0x81

OPS = {
    "HELLO": 1, "ISSUE": 2, "REVOKE": 3, "REISSUE": 4, "CRL": 5, "CHAIN": 6,
    "STATUS": 7, "PUBLISH": 8, "UNPUBLISH": 9, "SIGN_RRSET": 10, "ZONE_STATUS": 11,
    "IMPORT": 12,
}
OP_NAMES = {v: k for k, v in OPS.items()}

CODES = {
    1: "BAD_FRAME", 2: "TOO_LARGE", 3: "UNKNOWN_OP", 4: "BAD_REQUEST", 5: "DENIED",
    6: "NOT_FOUND", 7: "CONFLICT", 8: "RATE_LIMITED", 9: "BUSY", 10: "UNAVAILABLE",
    11: "STORAGE", 12: "INTERNAL", 13: "VERSION",
}
CODE_NUMBERS = {v: k for k, v in CODES.items()}
RETRYABLE = {"RATE_LIMITED", "BUSY", "UNAVAILABLE", "STORAGE"}

# §4 and §7: (name, kind, maximum bytes). Kinds: u32, u64, text, string, certs.
UNBOUNDED = None
MAX_CHAIN = 8
REQUEST_FIELDS = {
    "HELLO": [("min_version", "u32", 0), ("max_version", "u32", 0), ("client", "text", 64)],
    "ISSUE": [("device_id", "text", 64), ("index", "u32", 0), ("profile", "text", 64),
              ("csr_der", "string", 16384)],
    "REVOKE": [("device_id", "text", 64), ("index", "u32", 0), ("serial_hex", "text", 40),
               ("reason", "text", 32)],
    "REISSUE": [("device_id", "text", 64), ("old_index", "u32", 0), ("profile", "text", 64),
                ("csr_der", "string", 16384)],
    "CRL": [], "CHAIN": [], "STATUS": [], "ZONE_STATUS": [],
    "IMPORT": [("import_id", "u32", 0), ("seq", "u32", 0), ("flags", "u32", 0),
               ("idle_timeout", "u32", 0), ("records", "string", UNBOUNDED)],
    "PUBLISH": [("owner", "text", 1024), ("rrtype", "text", 16), ("ttl", "u32", 0),
                ("rdata", "text", 131072)],
    "UNPUBLISH": [("owner", "text", 1024), ("rrtype", "text", 16), ("ttl", "u32", 0),
                  ("rdata", "text", 131072)],
    "SIGN_RRSET": [("zone", "text", 1024), ("rrset_wire", "string", UNBOUNDED),
                   ("inception", "u32", 0), ("expiration", "u32", 0)],
}
_CERT_REPLY = [("cert_der", "string", 16384), ("chain", "certs", 16384),
               ("serial_hex", "text", 40), ("zone_serial", "u32", 0), ("index", "u32", 0)]
REPLY_FIELDS = {
    "HELLO": [("version", "u32", 0), ("max_frame", "u32", 0), ("server", "text", 64)],
    "ISSUE": _CERT_REPLY,
    "REVOKE": [("serial_hex", "text", 40), ("revoked_at", "u64", 0), ("zone_serial", "u32", 0)],
    "REISSUE": _CERT_REPLY,
    "CRL": [("crl_der", "string", UNBOUNDED)],
    "CHAIN": [("chain", "certs", 16384)],
    "STATUS": [("json", "text", UNBOUNDED)],
    "PUBLISH": [("zone_serial", "u32", 0)],
    "UNPUBLISH": [("zone_serial", "u32", 0)],
    "SIGN_RRSET": [("rrsig_wire", "string", UNBOUNDED)],
    "ZONE_STATUS": [("json", "text", UNBOUNDED)],
    "IMPORT": [("records", "u32", 0), ("zone_serial", "u32", 0)],
}
IMPORT_FINAL = 1  # §IMPORT: flags bit of the last chunk
# One packed record of an IMPORT chunk (PROTOCOL.md, IMPORT).
IMPORT_RECORD_FIELDS = [("device_id", "text", 64), ("index", "u32", 0),
                        ("cert_sha256", "string", 32), ("spki_sha256", "string", 32),
                        ("cert_der", "string", 16384)]
ERROR_FIELDS = [("code", "u32", 0), ("message", "text", 1024)]


class ProtocolError(Exception):
    """A frame breaks §2 (BAD_FRAME, TOO_LARGE or UNKNOWN_OP in §5 terms)."""

    def __init__(self, name, detail):
        super().__init__("%s: %s" % (name, detail))
        self.name = name


class ConnectionClosed(Exception):
    """The other side closed the connection."""


class RegsignError(Exception):
    """The server answered ERROR."""

    def __init__(self, code, message, req_id=None, op=None):
        self.code = code
        self.name = CODES.get(code, "UNKNOWN")
        self.message = message
        self.retryable = self.name in RETRYABLE
        self.id = req_id
        self.op = op
        super().__init__("%s: %s" % (self.name, message))


def _op_number(op):
    if isinstance(op, str):
        return OPS[op]
    return op


# ---- encoding ----

def _put_string(out, data, maximum, name):
    if maximum is not UNBOUNDED and len(data) > maximum:
        raise ValueError("%s: %d bytes, at most %d" % (name, len(data), maximum))
    out += struct.pack(">I", len(data))
    out += data


def _encode_fields(spec, fields):
    out = bytearray()
    for name, kind, maximum in spec:
        value = fields.get(name)
        if kind == "u32":
            out += struct.pack(">I", value or 0)
        elif kind == "u64":
            out += struct.pack(">Q", value or 0)
        elif kind == "text":
            data = (value or "").encode("utf-8")
            if b"\0" in data:
                raise ValueError("%s: text holds a NUL byte" % name)
            _put_string(out, data, maximum, name)
        elif kind == "string":
            _put_string(out, bytes(value or b""), maximum, name)
        elif kind == "certs":
            certs = list(value or [])
            if len(certs) > MAX_CHAIN:
                raise ValueError("%s: more than %d certificates" % (name, MAX_CHAIN))
            out += struct.pack(">I", len(certs))
            for cert in certs:
                _put_string(out, bytes(cert), maximum, name)
    unknown = set(fields) - {f[0] for f in spec}
    if unknown:
        raise ValueError("unknown fields: %s" % ", ".join(sorted(unknown)))
    return bytes(out)


def _frame(ftype, req_id, body, maximum):
    length = 5 + len(body)
    if length > maximum:
        raise ValueError("frame length %d above %d" % (length, maximum))
    return struct.pack(">IBI", length, ftype, req_id) + body


def encode_request(op, req_id, **fields):
    """Returns the frame of request `op` (name or number) with id `req_id`."""
    name = OP_NAMES[_op_number(op)]
    if not 0 < req_id <= 0xFFFFFFFF:
        raise ValueError("request id must be 1..2^32-1")
    return _frame(OPS[name], req_id, _encode_fields(REQUEST_FIELDS[name], fields), REQUEST_MAX)


def encode_reply(op, req_id, **fields):
    """Returns an OK frame answering `op`."""
    name = OP_NAMES[_op_number(op)]
    body = bytes([OPS[name]]) + _encode_fields(REPLY_FIELDS[name], fields)
    return _frame(OK, req_id, body, REPLY_MAX)


def encode_error(req_id, code, message=""):
    """Returns an ERROR frame; code is a number or a name."""
    if isinstance(code, str):
        code = CODE_NUMBERS[code]
    return _frame(ERROR, req_id, _encode_fields(ERROR_FIELDS, {"code": code, "message": message}),
                  REPLY_MAX)


# ---- decoding ----

class _Reader:
    def __init__(self, data, pos):
        self.data = data
        self.pos = pos

    def take(self, n):
        if n > len(self.data) - self.pos:
            raise ProtocolError("BAD_FRAME", "field runs past the end of the frame")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def u8(self):
        return self.take(1)[0]

    def u32(self):
        return struct.unpack(">I", self.take(4))[0]

    def u64(self):
        return struct.unpack(">Q", self.take(8))[0]

    def string(self, maximum, name):
        n = self.u32()
        if maximum is not UNBOUNDED and n > maximum:
            raise ProtocolError("BAD_FRAME", "%s: %d bytes, at most %d" % (name, n, maximum))
        return bytes(self.take(n))


def _decode_fields(r, spec):
    fields = {}
    for name, kind, maximum in spec:
        if kind == "u32":
            fields[name] = r.u32()
        elif kind == "u64":
            fields[name] = r.u64()
        elif kind == "text":
            raw = r.string(maximum, name)
            if b"\0" in raw:
                raise ProtocolError("BAD_FRAME", "%s: NUL byte in text" % name)
            try:
                fields[name] = raw.decode("utf-8", errors="strict")
            except UnicodeDecodeError:
                raise ProtocolError("BAD_FRAME", "%s: not UTF-8" % name) from None
        elif kind == "string":
            fields[name] = r.string(maximum, name)
        elif kind == "certs":
            count = r.u32()
            if count > MAX_CHAIN:
                raise ProtocolError("BAD_FRAME", "%s: %d certificates" % (name, count))
            fields[name] = [r.string(maximum, name) for _ in range(count)]
    if r.pos != len(r.data):
        raise ProtocolError("BAD_FRAME", "%d bytes after the last field" % (len(r.data) - r.pos))
    return fields


def frame_size(buf, maximum=REPLY_MAX):
    """Bytes the frame at the start of buf occupies, or None if the length
    prefix is incomplete. Checks the length before anything is allocated."""
    if len(buf) < 4:
        return None
    length = struct.unpack(">I", bytes(buf[:4]))[0]
    if length > maximum:
        raise ProtocolError("TOO_LARGE", "frame length %d above %d" % (length, maximum))
    if length < 5:
        raise ProtocolError("BAD_FRAME", "frame length %d below 5" % length)
    return 4 + length


def _open(frame, maximum):
    size = frame_size(frame, maximum)
    if size is None or size != len(frame):
        raise ProtocolError("BAD_FRAME", "buffer is not exactly one frame")
    ftype, req_id = struct.unpack(">BI", bytes(frame[4:9]))
    return ftype, req_id, _Reader(bytes(frame), 9)


def decode_request(frame, maximum=REQUEST_MAX):
    """Returns (op name, id, fields) of one complete request frame."""
    ftype, req_id, r = _open(frame, maximum)
    if ftype not in OP_NAMES:
        raise ProtocolError("UNKNOWN_OP", "request type %d" % ftype)
    if req_id == 0:
        raise ProtocolError("BAD_FRAME", "request id 0")
    name = OP_NAMES[ftype]
    return name, req_id, _decode_fields(r, REQUEST_FIELDS[name])


class Reply:
    """A decoded reply: ok (bool), id, op (name, None for an id-0 error),
    fields (dict), and for errors code / name / message."""

    def __init__(self, ok, req_id, op, fields):
        self.ok = ok
        self.id = req_id
        self.op = op
        self.fields = fields
        self.code = None if ok else fields["code"]
        self.name = None if ok else CODES.get(fields["code"], "UNKNOWN")
        self.message = None if ok else fields["message"]

    def error(self):
        return RegsignError(self.code, self.message, self.id, self.op)

    def __repr__(self):
        return "Reply(ok=%r, id=%r, op=%r, fields=%r)" % (self.ok, self.id, self.op, self.fields)


def decode_reply(frame, maximum=REPLY_MAX):
    """Decodes one complete reply frame into a Reply."""
    ftype, req_id, r = _open(frame, maximum)
    if ftype == ERROR:
        return Reply(False, req_id, None, _decode_fields(r, ERROR_FIELDS))
    if ftype != OK:
        raise ProtocolError("UNKNOWN_OP", "reply type %d" % ftype)
    op = r.u8()
    if op not in OP_NAMES:
        raise ProtocolError("UNKNOWN_OP", "OK for operation %d" % op)
    name = OP_NAMES[op]
    return Reply(True, req_id, name, _decode_fields(r, REPLY_FIELDS[name]))


def encode_import_record(device_id, index, cert_sha256=b"", spki_sha256=b"", cert_der=b""):
    """One record of an IMPORT chunk; concatenate records to make a chunk."""
    for name, h in (("cert_sha256", cert_sha256), ("spki_sha256", spki_sha256)):
        if len(h) not in (0, 32):
            raise ValueError("%s: %d bytes, must be 0 or 32" % (name, len(h)))
    return bytes(_encode_fields(IMPORT_RECORD_FIELDS, {
        "device_id": device_id, "index": index, "cert_sha256": cert_sha256,
        "spki_sha256": spki_sha256, "cert_der": cert_der}))


# ---- the connection ----

class Client:
    """One connection to regsignd. Not thread-safe."""

    def __init__(self, path, timeout=30.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
        except OSError:
            self.sock.close()
            raise
        self._rx = bytearray()
        self._next_id = 1
        self.outstanding = {}  # id -> op name

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- pipelining --

    def send(self, op, **fields):
        """Sends a request and returns its id; the reply comes from recv()."""
        req_id = self._next_id
        self._next_id = 1 if req_id == 0xFFFFFFFF else req_id + 1
        self.sock.sendall(encode_request(op, req_id, **fields))
        self.outstanding[req_id] = OP_NAMES[_op_number(op)]
        return req_id

    def send_raw(self, data):
        """Sends bytes as they are (for tests of malformed frames)."""
        self.sock.sendall(data)

    def recv_frame(self):
        """Returns the next complete frame (bytes) from the server."""
        while True:
            size = frame_size(self._rx, REPLY_MAX)
            if size is not None and len(self._rx) >= size:
                frame = bytes(self._rx[:size])
                del self._rx[:size]
                return frame
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionClosed("connection closed by the server")
            self._rx += chunk

    def recv(self):
        """Returns the next Reply, whichever request it answers."""
        reply = decode_reply(self.recv_frame())
        if reply.id != 0 or reply.ok:
            op = self.outstanding.pop(reply.id, None)
            if op is None:
                raise ProtocolError("BAD_FRAME", "reply to unknown id %d" % reply.id)
            if reply.ok and reply.op != op:
                raise ProtocolError("BAD_FRAME", "%s reply to a %s request" % (reply.op, op))
            reply.op = op
        return reply

    # -- synchronous calls --

    def call(self, op, **fields):
        """Sends one request, waits for its reply; returns the reply's fields
        or raises RegsignError."""
        req_id = self.send(op, **fields)
        while True:
            reply = self.recv()
            if reply.id in (req_id, 0):
                break
        if not reply.ok:
            raise reply.error()
        return reply.fields

    def hello(self, client="regsign_client.py", min_version=1, max_version=1):
        return self.call("HELLO", min_version=min_version, max_version=max_version,
                         client=client)

    def issue(self, device_id, index, profile, csr_der):
        return self.call("ISSUE", device_id=device_id, index=index, profile=profile,
                         csr_der=csr_der)

    def revoke(self, device_id, index=0, serial_hex="", reason="unspecified"):
        return self.call("REVOKE", device_id=device_id, index=index, serial_hex=serial_hex,
                         reason=reason)

    def reissue(self, device_id, old_index, profile, csr_der):
        return self.call("REISSUE", device_id=device_id, old_index=old_index, profile=profile,
                         csr_der=csr_der)

    def crl(self):
        return self.call("CRL")["crl_der"]

    def chain(self):
        return self.call("CHAIN")["chain"]

    def status(self):
        return self.call("STATUS")["json"]

    def zone_status(self):
        return self.call("ZONE_STATUS")["json"]

    def publish(self, owner, rrtype, ttl, rdata):
        return self.call("PUBLISH", owner=owner, rrtype=rrtype, ttl=ttl,
                         rdata=rdata)["zone_serial"]

    def unpublish(self, owner, rrtype, rdata=""):
        return self.call("UNPUBLISH", owner=owner, rrtype=rrtype, ttl=0,
                         rdata=rdata)["zone_serial"]

    def sign_rrset(self, zone, rrset_wire, inception, expiration):
        return self.call("SIGN_RRSET", zone=zone, rrset_wire=rrset_wire, inception=inception,
                         expiration=expiration)["rrsig_wire"]

    def import_chunk(self, import_id, seq, records, final=False, idle_timeout=0):
        """Sends one IMPORT chunk (records: bytes of encode_import_record()s);
        returns {"records": accepted so far, "zone_serial": serial (final only)}."""
        return self.call("IMPORT", import_id=import_id, seq=seq,
                         flags=IMPORT_FINAL if final else 0, idle_timeout=idle_timeout,
                         records=records)
