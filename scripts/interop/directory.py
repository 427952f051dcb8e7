#!/usr/bin/env python3
"""Independent implementation of the Valise organisation directory, written from
docs/PROTOCOL.md alone (Conventions, Signatures, Fingerprints, Directory, Requests and
public-key files, Directory files, Safety numbers) to check that the document is
byte-exact. It shares no code with the Swift implementation.

Libraries: PyNaCl (Ed25519), hashlib (BLAKE2b, SHA-512).    pip install pynacl

    directory.py verify FILE [--genesis HEX] [--pinned FILE] [--now SECONDS] [--json]
    directory.py make-demo OUTDIR [--now SECONDS]
    directory.py safety-number NAME1 KEY1 NAME2 KEY2

`verify` reads a log (VALISEDL) or a bundle (VALISEOB), checks every entry in the order
of the Verification section and prints the resulting directory. With --pinned, FILE must
also extend that (verified) log or bundle ("Extending a verified log"). On the first
refusal it prints "WHERE: WHAT [RULE]: WHY", WHERE being "entry N (kind and subject)",
"checkpoint of entry N" or the file, RULE the stable rule name, and exits 1 (2 for bad
usage or an unreadable file).
"""
import argparse, hashlib, json, os, re, struct, sys, time, unicodedata

from nacl import bindings as sodium
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

MAX_FILE, MAX_ENTRIES = 512 * 1024 * 1024, 10_000_000
MAX_BODY, MAX_SIGS, SKEW = 16384, 32, 300
FRAMED_MIN = 4 + 1 + 8 + 32 + 8 + 1 + 4 + 1   # u32 n + an entry with an empty body, S = 0
CHECKPOINT_LEN = 1 + 8 + 32 + 8 + 32 + 64
ZERO = bytes(32)
KINDS = {1: "genesis", 2: "add relay", 3: "remove relay", 4: "enroll", 5: "rotate",
         6: "revoke", 7: "change admins", 8: "certify checkpoint key",
         9: "certify checkpoint key until", 10: "enroll at home", 11: "move",
         12: "set relay addresses"}
MAX_VALIDITY = 730 * 86400   # a kind-9 not-after is at most this long after its entry
RULES = {"malformed": "not decodable", "sequence": "out of sequence",
         "genesis": "genesis rule broken", "chain": "hash chain broken",
         "genesis-pin": "not the pinned organisation", "time": "time goes backwards",
         "future": "dated in the future", "signer": "signed by a key that is not an admin",
         "signature": "invalid signature", "admins": "invalid admin set",
         "threshold": "not enough admin signatures", "relay": "relay rule broken",
         "request": "request signature invalid", "key-reuse": "key already used",
         "member": "member rule broken", "rollback": "rollback", "fork": "FORK",
         "checkpoint": "checkpoint refused",
         "not-after": "checkpoint key validity out of bounds"}
LABEL = re.compile(rb"[a-z0-9][a-z0-9._-]{0,63}\Z")
HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?\Z")   # DNS name or IPv4
IPV6 = re.compile(r"\[[0-9A-Fa-f:.]+\]\Z")
PORT = re.compile(r"[1-9][0-9]{0,4}\Z")


class Refused(Exception):
    """A rule of the Verification section (or of Directory files) was broken.
    Printed as Valise prints it: WHERE: WHAT [RULE]: WHY."""
    def __init__(self, where, rule, why):
        super().__init__("%s: %s [%s]: %s" % (where, RULES[rule], rule, why))
        self.where, self.rule = where, rule


# ---- primitives -------------------------------------------------------------------------

def u16(n): return struct.pack(">H", n)
def u32(n): return struct.pack(">I", n)
def u64(n): return struct.pack(">Q", n)
def str16(b): return u16(len(b)) + b
def blake32(b): return hashlib.blake2b(b, digest_size=32).digest()
def x25519_public(): return sodium.crypto_scalarmult_base(os.urandom(32))


def sign(sk: SigningKey, purpose: bytes, msg: bytes) -> bytes:
    # "valise/v1/" ‖ purpose ‖ 0x00 ‖ message: the zero byte ends the label.
    return sk.sign(b"valise/v1/" + purpose + b"\x00" + msg).signature


def verifies(pk: bytes, purpose: bytes, msg: bytes, sig: bytes) -> bool:
    # libsodium's verification, which refuses non-canonical and small-order keys.
    try:
        VerifyKey(pk).verify(b"valise/v1/" + purpose + b"\x00" + msg, sig)
        return True
    except (BadSignatureError, ValueError):
        return False


def fingerprint(name: bytes, key: bytes) -> str:
    # Members (name, identity key) and admins (admin name, signing key).
    d = hashlib.sha512(b"valise/v1/fingerprint\x00" + u16(len(name)) + name + key).digest()
    for _ in range(5199):                       # 5200 SHA-512 in all
        d = hashlib.sha512(d + key).digest()
    return " ".join("%05d" % (int.from_bytes(d[5 * i:5 * i + 5], "big") % 100000)
                    for i in range(6))


def safety_number(fp_a: str, fp_b: str) -> str:
    # The fingerprints as 30-digit strings (no spaces), sorted, joined, 12 groups of 5.
    digits = "".join(sorted([fp_a.replace(" ", ""), fp_b.replace(" ", "")]))
    return " ".join(digits[i:i + 5] for i in range(0, 60, 5))


def statement(kind, member, keys, created):
    # enrollment: u8 1 ‖ str16 member ‖ ik ‖ tk ‖ u64 created
    # rotation:   u8 2 ‖ str16 member ‖ old ik ‖ new ik ‖ new tk ‖ u64 created
    return bytes([kind]) + str16(member.encode()) + b"".join(keys) + u64(created)


# ---- decoding ---------------------------------------------------------------------------

class Reader:
    """Big-endian reader; every failure is a ValueError, reported as `malformed`."""
    def __init__(self, data: bytes):
        self.d, self.at = data, 0

    def take(self, n: int) -> bytes:
        if n > len(self.d) - self.at:
            raise ValueError("truncated (%d bytes wanted at offset %d)" % (n, self.at))
        self.at += n
        return self.d[self.at - n:self.at]

    def u8(self): return self.take(1)[0]
    def u16(self): return struct.unpack(">H", self.take(2))[0]
    def u32(self): return struct.unpack(">I", self.take(4))[0]
    def u64(self): return struct.unpack(">Q", self.take(8))[0]

    def ed(self, what):
        # A canonical point of the prime-order subgroup (libsodium's is_valid_point, which
        # also refuses small-order points). Keys that only verify a signature in the same
        # entry are read with take(32): the signature check judges them.
        k = self.take(32)
        if not sodium.crypto_core_ed25519_is_valid_point(k):
            raise ValueError("%s is not a valid Ed25519 public key" % what)
        return k

    def name(self, what, member=False):
        # A label; a member name is person@mission, two labels around exactly one '@'.
        s = self.take(self.u16())
        parts = s.split(b"@") if member else [s]
        if len(parts) != (2 if member else 1) or not all(LABEL.match(p) for p in parts):
            raise ValueError("%s %r is not a valid name" % (what, s))
        return s.decode()

    def text(self, what, limit):
        # UTF-8, 1 to `limit` bytes, no character of general category Cc (C0, DEL, C1).
        s = self.take(self.u16())
        try:
            t = s.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("%s is not UTF-8" % what)
        if not 1 <= len(s) <= limit or any(unicodedata.category(c) == "Cc" for c in t):
            raise ValueError("%s: empty, over %d bytes or control characters" % (what, limit))
        return t

    def done(self, what):
        if self.at != len(self.d):
            raise ValueError("%d bytes left over after the %s" % (len(self.d) - self.at, what))


def admin_set(r: Reader) -> dict:
    # u8 N (1 to 32, else malformed) ‖ N × (label ‖ Ed25519 ‖ X25519) ‖ u8 K (any byte:
    # K = 0 or K > N is the `admins` rule, checked after the signatures).
    n = r.u8()
    if not 1 <= n <= 32:
        raise ValueError("an admin set has 1 to 32 admins, not %d" % n)
    admins = [{"name": r.name("admin name"), "sign": r.ed("admin signing key"),
               "x": r.take(32)} for _ in range(n)]
    return {"admins": admins, "k": r.u8()}


def decode_body(kind: int, body: bytes) -> dict:
    r, b = Reader(body), {}
    if kind == 1:
        b["org"] = r.text("organisation", 200)
        b.update(admin_set(r))
        b["warn"], b["refuse"] = r.u32(), r.u32()
    elif kind == 2:   # the signing key only verifies the proof: not point-checked
        b["name"], b["address"] = r.name("relay name"), r.text("relay address", 255)
        b["noise"], b["sign"], b["proof"] = r.take(32), r.take(32), r.take(64)
    elif kind == 3:
        b["name"] = r.name("relay name")
    elif kind in (4, 10):   # the identity key only verifies the request: not point-checked
        b["member"], b["ik"], b["tk"] = r.name("member", True), r.take(32), r.take(32)
        b["created"], b["sig"] = r.u64(), r.take(64)
        b["mission"], b["role"] = r.text("mission", 200), r.text("role", 64)
        b["home"] = r.name("home relay") if kind == 10 else None
    elif kind == 5:   # old and new identity keys: not point-checked either
        b["member"], b["old"] = r.name("member", True), r.take(32)
        b["ik"], b["tk"], b["created"] = r.take(32), r.take(32), r.u64()
        b["sig"], c = r.take(64), r.u8()
        if c not in (0, 1):
            raise ValueError("countersigned is %d" % c)
        b["countersigned"], b["oldsig"] = c == 1, r.take(64) if c else None
    elif kind == 6:
        t = r.u8()
        if t not in (1, 2):
            raise ValueError("revoke target is %d" % t)
        b["member"] = r.name("member", True) if t == 1 else None
        b["key"] = r.ed("revoked identity key") if t == 2 else None
        b["reason"] = r.text("reason", 500)
    elif kind == 7:
        b.update(admin_set(r))
    elif kind == 8:
        b["key"], b["notAfter"] = r.ed("checkpoint key"), None
    elif kind == 9:
        b["key"], b["notAfter"] = r.ed("checkpoint key"), r.u64()
    elif kind == 11:
        b["member"], b["home"] = r.name("member", True), r.name("home relay")
    elif kind == 12:
        b["name"], n = r.name("relay name"), r.u8()
        if not 1 <= n <= 8:
            raise ValueError("a relay has 1 to 8 addresses, not %d" % n)
        b["addresses"] = [r.text("relay address", 255) for _ in range(n)]
    else:
        raise ValueError("unknown kind %d" % kind)
    r.done("body")
    return b


def decode_entry(raw: bytes) -> dict:
    r = Reader(raw)
    if r.u8() != 1:
        raise ValueError("entry version is not 1")
    e = {"seq": r.u64(), "prev": r.take(32), "time": r.u64(), "kind": r.u8()}
    length = r.u32()
    if length > MAX_BODY:
        raise ValueError("body length %d > %d" % (length, MAX_BODY))
    body = r.take(length)
    e["signed"] = raw[:r.at]
    e["hash"] = blake32(e["signed"])          # signatures are not hashed
    s = r.u8()
    if s > MAX_SIGS:
        raise ValueError("%d signatures > %d" % (s, MAX_SIGS))
    # Signer keys are not decoded as points; strictly ascending: exactly one encoding.
    e["sigs"] = [(r.take(32), r.take(64)) for _ in range(s)]
    if any(a[0] >= b[0] for a, b in zip(e["sigs"], e["sigs"][1:])):
        raise ValueError("signatures not sorted by signer key, or a signer twice")
    r.done("signatures")
    e["body"] = decode_body(e["kind"], body)
    return e


def decode_file(data: bytes):
    """-> (decoded entries, checkpoint tuple or None). Refuses as `malformed` whatever
    Directory files refuses: the whole file is decoded before any entry is verified."""
    r, what = Reader(data), "directory file"
    try:
        if len(data) > MAX_FILE:
            raise ValueError("file larger than 512 MiB")
        magic = r.take(8) if len(data) >= 9 else b""
        if magic not in (b"VALISEDL", b"VALISEOB") or r.u8() != 1:
            raise ValueError("not a version-1 directory log or bundle")
        bundle = magic == b"VALISEOB"
        what = "organisation bundle" if bundle else "directory log"
        genesis = r.take(32) if bundle else None
        count = r.u32()
        if count == 0:
            raise ValueError("it holds no entries (the count must be at least 1)")
        if count > MAX_ENTRIES:
            raise ValueError("%d entries > 10,000,000" % count)
        if count * FRAMED_MIN > len(data) - r.at:     # refused before allocating anything
            raise ValueError("count %d cannot fit in %d bytes" % (count, len(data) - r.at))
    except ValueError as why:
        raise Refused(what, "malformed", str(why))
    entries = []
    for i in range(count):
        try:
            entries.append(decode_entry(r.take(r.u32())))
            if entries[-1]["seq"] != i:   # files hold entries in order from 0
                raise ValueError("it says it is entry %d" % entries[-1]["seq"])
        except ValueError as why:
            raise Refused("entry %d" % i, "malformed", str(why))
    cp = None
    try:
        if bundle and genesis != entries[0]["hash"]:
            raise ValueError("its genesis hash is not its first entry's hash")
        has = r.u8() if bundle else 0
        if has not in (0, 1):
            raise ValueError("has-checkpoint is %d" % has)
        if has:   # u8 1 ‖ u64 sequence ‖ head hash ‖ u64 time ‖ key ‖ signature
            c = Reader(r.take(CHECKPOINT_LEN))
            cp = {"version": c.u8(), "seq": c.u64(), "head": c.take(32), "time": c.u64(),
                  "key": c.take(32), "sig": c.take(64), "signed": c.d[:49]}
            if cp["version"] != 1:
                raise ValueError("checkpoint version %d" % cp["version"])
        r.done("last entry" if not bundle else "bundle")
    except ValueError as why:
        raise Refused(what, "malformed", str(why))
    return entries, cp


# ---- verification -----------------------------------------------------------------------

def valid_address(a: str) -> bool:
    # HOST:PORT; HOST a DNS name or IPv4 address (letters, digits, '-', '.', not starting
    # or ending with '.' or '-', at most 253 bytes) or [IPv6] (hex digits, ':', '.');
    # PORT 1 to 65535 in decimal without a sign or leading zeros.
    host, colon, port = a.rpartition(":")
    return (bool(colon) and bool(PORT.match(port)) and int(port) <= 65535
            and bool(IPV6.match(host) or HOST.match(host)))


class Directory:
    def __init__(self, pin=None, now=None):
        self.pin, self.now = pin, int(time.time()) if now is None else now
        self.hashes, self.times = [], []
        self.org = self.warn = self.refuse = None
        self.admins, self.k = [], 0
        self.members, self.revoked, self.relays = {}, set(), {}   # relays: in add-relay order
        self.checkpoint_keys, self.used = [], set()   # used: ("ed" | "x", key bytes)

    def extend(self, entries) -> None:
        """A batch: consecutive, not ending before the last verified entry, and equal to
        what was verified where it overlaps."""
        for a, b in zip(entries, entries[1:]):
            if b["seq"] != a["seq"] + 1:
                raise Refused(where(b), "sequence", "the batch is not consecutive")
        last = entries[-1]
        if last["seq"] < len(self.hashes) - 1:
            raise Refused(where(last), "rollback", "the batch ends at entry %d, before the "
                          "last verified entry %d" % (last["seq"], len(self.hashes) - 1))
        for e in entries:
            if e["seq"] < len(self.hashes):
                if e["hash"] != self.hashes[e["seq"]]:
                    raise Refused(where(e), "fork", "its hash is not the verified entry's")
            else:
                self.apply(e)

    def apply(self, e: dict) -> None:
        """Check one entry against the state left by the previous ones, in the order of
        the Verification section (the first failing check is reported), then apply it."""
        n, b, kind, seq = len(self.hashes), e["body"], e["kind"], e["seq"]

        def need(ok, rule, why):
            if not ok:
                raise Refused(where(e), rule, why)
        need(seq == n, "sequence", "sequence %d, expected %d" % (seq, n))
        need(kind == 1 if n == 0 else kind != 1, "genesis",
             "the first entry must be a genesis, and only the first")
        need(e["prev"] == (self.hashes[-1] if n else ZERO), "chain",
             "its previous hash is not entry %d's hash" % (n - 1) if n else
             "a genesis's previous hash must be zero")
        need(n > 0 or self.pin is None or e["hash"] == self.pin, "genesis-pin",
             "its hash %s is not the pinned genesis" % e["hash"].hex())
        need(not n or e["time"] >= self.times[-1], "time",
             "dated %d, before the previous entry (%d)" % (e["time"], n and self.times[-1]))
        need(e["time"] <= self.now + SKEW, "future",
             "dated %d, more than %d s after now (%d)" % (e["time"], SKEW, self.now))
        # Signer, then signature, for each signature in order: the admins in force before
        # the entry (the genesis: its own).
        admins, k = (b["admins"], b["k"]) if kind == 1 else (self.admins, self.k)
        for pk, sig in e["sigs"]:
            need(pk in {a["sign"] for a in admins}, "signer", "%s is not an admin" % pk.hex())
            need(verifies(pk, b"directory-entry", e["signed"], sig), "signature",
                 "the signature by %s does not verify" % pk.hex())
        if kind in (1, 7):
            na = len(b["admins"])
            need(1 <= b["k"] <= na, "admins", "threshold %d with %d admins" % (b["k"], na))
            for f in ("name", "sign", "x"):
                need(len({a[f] for a in b["admins"]}) == na, "admins",
                     "two admins share a name, signing key or transport key")
        need(kind != 1 or 0 < b["warn"] <= b["refuse"], "genesis",
             "warn-after is 0 or exceeds refuse-after")
        need(len(e["sigs"]) >= k, "threshold", "%d signatures, %d needed" % (len(e["sigs"]), k))

        # The body's rules. Key reuse: Ed25519 and X25519 keys are counted apart, and every
        # key an entry brings must be unused.
        def unused(*keys):
            need(not any(t in self.used for t in keys), "key-reuse", "a new key was used before")
        m = self.members.get(b.get("member"))
        active = m is not None and m["status"] == "active"
        owner = None
        if kind == 2:
            need(b["name"] not in self.relays, "relay", "relay %s exists" % b["name"])
            need(valid_address(b["address"]), "relay",
                 "address %r is not HOST:PORT" % b["address"])
            need(verifies(b["sign"], b"relay-public-key", b["noise"] + b["sign"], b["proof"]),
                 "request", "the relay's proof does not verify")
            unused(("x", b["noise"]), ("ed", b["sign"]))
        elif kind == 3:   # members homed there by kind 10 or 11 must be moved first
            need(b["name"] in self.relays, "relay", "no relay %s" % b["name"])
            need(not any(x["status"] == "active" and x["home"] == b["name"]
                         for x in self.members.values()), "relay",
                 "active members are homed at relay %s" % b["name"])
        elif kind in (4, 10):
            need(not active, "member", "%s is an active member" % b["member"])
            st = statement(1, b["member"], [b["ik"], b["tk"]], b["created"])
            need(verifies(b["ik"], b"enrollment-request", st, b["sig"]), "request",
                 "the enrollment request signature does not verify")
            unused(("ed", b["ik"]), ("x", b["tk"]))
            need(kind == 4 or b["home"] in self.relays, "relay", "no relay %s" % b["home"])
        elif kind == 11:   # the default relay counts as home for a member without one
            need(active, "member", "%s is not a member or is revoked" % b["member"])
            need(b["home"] in self.relays, "relay", "no relay %s" % b["home"])
            need(self.home(m) != b["home"], "relay", "%s is already homed there" % b["member"])
        elif kind == 12:
            need(b["name"] in self.relays, "relay", "no relay %s" % b["name"])
            for a in b["addresses"]:
                need(valid_address(a), "relay", "address %r is not HOST:PORT" % a)
            need(len({a.lower() for a in b["addresses"]}) == len(b["addresses"]), "relay",
                 "an address is listed twice")
        elif kind == 5:
            need(active, "member", "%s is not a member or is revoked" % b["member"])
            need(b["old"] == m["ik"], "member", "the old key is not the member's current key")
            if b["countersigned"]:   # new and old key both sign the rotation statement
                st = statement(2, b["member"], [b["old"], b["ik"], b["tk"]], b["created"])
                ok = (verifies(b["ik"], b"rotation-request", st, b["sig"])
                      and verifies(b["old"], b"rotation-request", st, b["oldsig"]))
            else:                    # lost device: the new key signs an enrollment statement
                st = statement(1, b["member"], [b["ik"], b["tk"]], b["created"])
                ok = verifies(b["ik"], b"enrollment-request", st, b["sig"])
            need(ok, "request", "a rotation request signature does not verify")
            unused(("ed", b["ik"]), ("x", b["tk"]))
        elif kind == 6 and b["member"]:
            need(active, "member", "%s is not a member or is revoked" % b["member"])
        elif kind == 6:
            owner = next((x for x in self.members.values()
                          if b["key"] == x["ik"] or b["key"] in x["earlier"]), None)
            need(b["key"] not in self.revoked and owner, "member",
                 "the key is already revoked, or no member has or had it")
        elif kind == 7:   # an admin who stays (same name) may keep their own keys
            stays = {a["name"]: a for a in self.admins}
            unused(*[(t, a[f]) for a in b["admins"] for t, f in (("ed", "sign"), ("x", "x"))
                     if a["name"] not in stays or stays[a["name"]][f] != a[f]])
        elif kind == 8:
            unused(("ed", b["key"]))
        elif kind == 9:
            need(e["time"] < b["notAfter"] <= e["time"] + MAX_VALIDITY, "not-after",
                 "not-after %d is not after the entry's time (%d) or more than 730 days after it"
                 % (b["notAfter"], e["time"]))
            unused(("ed", b["key"]))

        self.hashes.append(e["hash"])
        self.times.append(e["time"])
        if kind in (1, 7):
            self.used.update(t for a in b["admins"] for t in (("ed", a["sign"]), ("x", a["x"])))
            self.admins, self.k = b["admins"], b["k"]
        if kind == 1:
            self.org, self.warn, self.refuse = b["org"], b["warn"], b["refuse"]
        elif kind == 2:
            self.used.update([("x", b["noise"]), ("ed", b["sign"])])
            self.relays[b["name"]] = {"addresses": [b["address"]], "noise": b["noise"],
                                      "sign": b["sign"]}
        elif kind == 3:
            del self.relays[b["name"]]
        elif kind in (4, 10):   # a revoked member enrolled again starts a fresh record
            self.used.update([("ed", b["ik"]), ("x", b["tk"])])
            self.members[b["member"]] = {"name": b["member"], "mission": b["mission"],
                                         "role": b["role"], "ik": b["ik"], "tk": b["tk"],
                                         "enrolled": seq, "status": "active", "earlier": {},
                                         "home": b["home"]}
        elif kind == 11:
            m["home"] = b["home"]
        elif kind == 12:
            self.relays[b["name"]]["addresses"] = b["addresses"]
        elif kind == 5:   # earlier keys: transport key, retiring entry, countersigned
            self.used.update([("ed", b["ik"]), ("x", b["tk"])])
            m["earlier"][m["ik"]] = (m["tk"], seq, b["countersigned"])
            m["ik"], m["tk"] = b["ik"], b["tk"]
        elif kind == 6:
            target = owner or m
            if b["member"] or b["key"] == target["ik"]:   # the member and all its keys
                target.update(status="revoked", reason=b["reason"], revokedAt=seq)
                self.revoked.update([target["ik"], *target["earlier"]])
            else:                                         # an earlier key: that key only
                self.revoked.add(b["key"])
        elif kind in (8, 9):
            self.used.add(("ed", b["key"]))
            self.checkpoint_keys.append((seq, b["key"], b["notAfter"]))

    def home(self, m):
        """The member's home relay: the one kind 10 or 11 named, else the default relay
        (the first listed in add-relay order); None when no relay is listed."""
        if m["home"] in self.relays:
            return m["home"]
        return next(iter(self.relays), None)

    def check_checkpoint(self, cp: dict) -> dict:
        seq = cp["seq"]

        def need(ok, rule, why):
            if not ok:
                raise Refused("checkpoint of entry %d" % seq, rule, why)
        need(seq < len(self.hashes), "checkpoint",
             "the log ends at entry %d: the log is behind" % (len(self.hashes) - 1))
        # Only the newest certified key counts, and only if kind 9 gave it a not-after.
        need(self.checkpoint_keys, "checkpoint", "the log certifies no checkpoint key")
        at, key, not_after = self.checkpoint_keys[-1]
        need(key == cp["key"], "checkpoint", "its key is not the newest checkpoint key")
        need(not_after is not None, "checkpoint", "its key was certified by kind 8 (no not-after)")
        need(at <= seq, "checkpoint", "its key was certified after the entry it names")
        need(cp["time"] <= not_after, "checkpoint", "dated after its key's not-after")
        need(verifies(cp["key"], b"checkpoint", cp["signed"], cp["sig"]), "checkpoint",
             "its signature does not verify")
        need(self.hashes[seq] == cp["head"], "fork", "its head hash is not the log's")
        need(self.times[seq] <= cp["time"] <= self.now + SKEW, "checkpoint",
             "dated %d, before its entry (%d) or more than %d s after now (%d)"
             % (cp["time"], self.times[seq], SKEW, self.now))
        return {"sequence": seq, "time": iso(cp["time"])}

    def state(self) -> dict:
        def member(m):
            out = {"name": m["name"], "mission": m["mission"], "role": m["role"],
                   "status": m["status"], "fingerprint": fingerprint(m["name"].encode(), m["ik"]),
                   "identityKey": m["ik"].hex(), "transportKey": m["tk"].hex(),
                   "rotations": len(m["earlier"]), "enrolledAt": m["enrolled"],
                   "homeRelay": self.home(m), "homeIsDefault": m["home"] is None}
            if m["status"] == "revoked":
                out.update(revocationReason=m["reason"], revokedAt=m["revokedAt"])
            return out
        out = {"organisation": self.org, "genesis": self.hashes[0].hex(),
               "entries": len(self.hashes), "headHash": self.hashes[-1].hex(),
               "headTime": iso(self.times[-1]), "warnAfter": self.warn,
               "refuseAfter": self.refuse, "threshold": self.k,
               "admins": [{"name": a["name"], "signingKey": a["sign"].hex(),
                           "fingerprint": fingerprint(a["name"].encode(), a["sign"]),
                           "transportKey": a["x"].hex()} for a in self.admins],
               "members": [member(self.members[n]) for n in sorted(self.members)],
               "revokedKeys": len(self.revoked),
               "relays": [{"name": n, "address": v["addresses"][0], "addresses": v["addresses"],
                           "noiseKey": v["noise"].hex(), "signingKey": v["sign"].hex(),
                           "isDefault": n == next(iter(self.relays))}
                          for n, v in sorted(self.relays.items())]}
        if self.checkpoint_keys:
            out["checkpointKey"] = self.checkpoint_keys[-1][1].hex()
        return out


def where(e):
    b = e["body"]
    what = b.get("member") or b.get("name") or (b["key"].hex()[:16] + "…" if b.get("key") else "")
    return ("entry %d (%s %s" % (e["seq"], KINDS[e["kind"]], what)).strip() + ")"


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def verify_bytes(data: bytes, pin=None, now=None, pinned=None) -> dict:
    """Verify a whole file on its own; with `pinned` (the bytes of a file verified before),
    also check that it extends that one (rollback, fork)."""
    entries, cp = decode_file(data)
    d = Directory(pin, now)
    for e in entries:
        d.apply(e)
    if pinned is not None:
        d = Directory(pin, now)
        d.extend(decode_file(pinned)[0])
        d.extend(entries)
    out = d.state()
    if cp:
        out["checkpoint"] = d.check_checkpoint(cp)
    return out


# ---- make-demo ----------------------------------------------------------------------------

def entry_bytes(seq, prev, ts, kind, body, signers):
    signed = b"\x01" + u64(seq) + prev + u64(ts) + bytes([kind]) + u32(len(body)) + body
    sigs = sorted((sk.verify_key.encode(), sign(sk, b"directory-entry", signed)) for sk in signers)
    return signed + bytes([len(sigs)]) + b"".join(pk + s for pk, s in sigs), blake32(signed)


def enrollment(member: str, sk, tk, created):
    st = statement(1, member, [sk.verify_key.encode(), tk], created)
    return st, sign(sk, b"enrollment-request", st)


def make_demo(out: str, now=None) -> None:
    """A 2-of-3 organisation: genesis, enrollments, a countersigned and a lost-device
    rotation, revocations (of a member, of an earlier key, of a current key), a
    re-enrollment, relays (one IPv6, one removed), an enrollment at a home relay, a move,
    a relay's address list, a change of admins, checkpoint keys and a checkpoint."""
    os.makedirs(out, exist_ok=True)
    now = int(time.time()) if now is None else now
    admins = [(n, SigningKey.generate(), x25519_public()) for n in ("ana", "ben", "chloe")]
    log, hashes = [], [ZERO]

    def add(kind, body):   # dated a little in the past; signed by a varying 2 of the 3
        signers = [admins[len(log) % 3][1], admins[(len(log) + 1) % 3][1]]
        raw, h = entry_bytes(len(log), hashes[-1], now - 100 + len(log), kind, body, signers)
        log.append(raw)
        hashes.append(h)

    def admin_set(members, k):
        return (bytes([len(members)]) + b"".join(str16(n.encode()) + sk.verify_key.encode() + x
                                                 for n, sk, x in members) + bytes([k]))

    def enroll(member, mission, role):
        dev[member] = sk = SigningKey.generate()
        st, sig = enrollment(member, sk, x25519_public(), now - 200)
        add(4, st[1:] + sig + str16(mission.encode()) + str16(role.encode()))

    def rotate(member, countersigned):
        new, tk, old = SigningKey.generate(), x25519_public(), dev[member]
        if countersigned:   # new and old key sign the rotation statement
            st = statement(2, member, [old.verify_key.encode(), new.verify_key.encode(), tk],
                           now - 90)
            add(5, st[1:] + sign(new, b"rotation-request", st) + b"\x01"
                + sign(old, b"rotation-request", st))
        else:               # lost device: the new key's enrollment statement only
            st, sig = enrollment(member, new, tk, now - 80)
            add(5, str16(member.encode()) + old.verify_key.encode() + new.verify_key.encode()
                + tk + u64(now - 80) + sig + b"\x00")
        dev[member] = new
        return old.verify_key.encode()

    def relay(name, address):
        sk, noise = SigningKey.generate(), x25519_public()
        pk = sk.verify_key.encode()
        add(2, str16(name) + str16(address) + noise + pk + sign(sk, b"relay-public-key", noise + pk))

    dev = {}
    add(1, str16("Ministère de l'Intérieur".encode()) + admin_set(admins, 2) + u32(2 * 86400)
        + u32(7 * 86400))
    enroll("dina@quito", "Quito", "consul")
    enroll("emil@oslo", "Embassy in Oslo", "attaché")
    rotate("dina@quito", True)
    rotate("emil@oslo", False)
    add(6, b"\x01" + str16(b"emil@oslo") + str16(b"device seized at the border"))
    relay(b"relay-1", b"relay.example.net:8443")
    add(8, SigningKey.generate().verify_key.encode())       # old logs: kind 8 still verifies
    enroll("farid@rabat", "Rabat", "chargé d'affaires")
    earlier = rotate("farid@rabat", True)                 # revoke an earlier key: that key only
    add(6, b"\x02" + earlier + str16(b"old laptop sold"))
    enroll("gala@lima", "Lima", "staff")                   # revoke a current key: the member
    add(6, b"\x02" + dev["gala@lima"].verify_key.encode() + str16(b"key compromised"))
    enroll("emil@oslo", "Oslo", "attaché")                 # re-enrolled: a fresh record
    relay(b"relay-2", b"[2001:db8::7]:443")
    add(3, str16(b"relay-1"))      # members without a named home follow the default: relay-2
    relay(b"hq", b"hq.example.net:7400")
    dev["ines@dakar"] = sk = SigningKey.generate()        # kind 10: enrolled at home hq
    st, sig = enrollment("ines@dakar", sk, x25519_public(), now - 200)
    add(10, st[1:] + sig + str16(b"Dakar") + str16(b"consul") + str16(b"hq"))
    add(11, str16(b"dina@quito") + str16(b"hq"))          # kind 11: moved from the default
    add(12, str16(b"hq") + b"\x02" + str16(b"hq-b.example.net:7400") + str16(b"[2001:db8::8]:7400"))
    dario = ("dario", SigningKey.generate(), x25519_public())   # chloe leaves, signing it
    add(7, admin_set(admins[:2] + [dario], 2))
    admins[2] = dario
    cpk = SigningKey.generate()                             # the newest key: kind 9, a year
    add(9, cpk.verify_key.encode() + u64(now - 100 + len(log) + 365 * 86400))
    cp = b"\x01" + u64(len(log) - 1) + hashes[-1] + u64(now - 10)
    cp += cpk.verify_key.encode() + sign(cpk, b"checkpoint", cp)
    framed = u32(len(log)) + b"".join(u32(len(e)) + e for e in log)
    files = {"demo.log": b"VALISEDL\x01" + framed,
             "demo.bundle": b"VALISEOB\x01" + hashes[1] + framed + b"\x01" + cp}
    # The demo log and one more entry that breaks a rule of kinds 3, 10, 11 or 12: both
    # implementations must refuse it, naming the same entry and rule (refused.txt).
    st, sig = enrollment("jo@dakar", SigningKey.generate(), x25519_public(), now - 200)
    bad = {"remove-home": (3, str16(b"hq"), "relay"),
           "enroll-nowhere": (10, st[1:] + sig + str16(b"Dakar") + str16(b"staff")
                              + str16(b"lagos"), "relay"),
           "move-revoked": (11, str16(b"gala@lima") + str16(b"hq"), "member"),
           "move-home": (11, str16(b"ines@dakar") + str16(b"hq"), "relay"),
           "move-default": (11, str16(b"emil@oslo") + str16(b"relay-2"), "relay"),
           "addresses-twice": (12, str16(b"hq") + b"\x02" + str16(b"a.example:1")
                               + str16(b"A.Example:1"), "relay")}
    refused = []
    for name, (kind, body, rule) in sorted(bad.items()):
        raw, _ = entry_bytes(len(log), hashes[-1], now - 100 + len(log), kind, body,
                             [admins[0][1], admins[1][1]])
        files["refused-%s.log" % name] = (b"VALISEDL\x01" + u32(len(log) + 1)
                                          + b"".join(u32(len(e)) + e for e in log + [raw]))
        refused.append("refused-%s.log entry %d [%s]\n" % (name, len(log), rule))
    files["refused.txt"] = "".join(refused).encode()
    # An enrollment request for a member not in the log, and an admin public-key file
    # (its signature covers the bytes from the version to `created`, not the magic).
    req = SigningKey.generate()
    st, sig = enrollment("hana@dakar", req, x25519_public(), now)
    files["member.request"] = b"VALISERQ\x01" + st + sig
    adm = SigningKey.generate()
    signed = (b"\x01" + str16(b"gaspard") + adm.verify_key.encode() + x25519_public()
              + u64(now))
    files["admin.pub"] = b"VALISEAP" + signed + sign(adm, b"admin-public-key", signed)
    expected = verify_bytes(files["demo.bundle"], hashes[1], now)
    files["expected.json"] = (json.dumps(expected, indent=2, sort_keys=True) + "\n").encode()
    for name, data in files.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print("genesis %s\nhana@dakar %s\nadmin gaspard %s" % (
        hashes[1].hex(), fingerprint(b"hana@dakar", req.verify_key.encode()),
        fingerprint(b"gaspard", adm.verify_key.encode())))


def print_state(s: dict) -> None:
    print("organisation:   %s\ngenesis:        %s" % (s["organisation"], s["genesis"]))
    print("head:           entry %d, %s, %s" % (s["entries"] - 1, s["headHash"], s["headTime"]))
    print("freshness:      warn after %d s, refuse after %d s" % (s["warnAfter"], s["refuseAfter"]))
    print("admins (%d of %d must sign):" % (s["threshold"], len(s["admins"])))
    for a in s["admins"]:
        print("  %-20s %s" % (a["name"], a["fingerprint"]))
    print("members (%d):" % len(s["members"]))
    for m in s["members"]:
        print("  %-24s %-16s %-16s %-7s %s  %d rotation(s)  home %s%s" % (m["name"],
              m["mission"], m["role"], m["status"], m["fingerprint"], m["rotations"],
              m["homeRelay"] or "none", " (default)" if m["homeIsDefault"] else ""))
    print("revoked keys:   %d" % s["revokedKeys"])
    for r in s["relays"]:
        print("relay:          %s %s noise key %s%s" % (r["name"], " ".join(r["addresses"]),
              r["noiseKey"], " (default)" if r["isDefault"] else ""))
    print("checkpoint key: %s" % s.get("checkpointKey", "none"))
    if "checkpoint" in s:
        print("checkpoint:     entry %d at %s" % (s["checkpoint"]["sequence"], s["checkpoint"]["time"]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("verify")
    v.add_argument("file"); v.add_argument("--genesis"); v.add_argument("--now", type=int)
    v.add_argument("--pinned"); v.add_argument("--json", action="store_true")
    demo = sub.add_parser("make-demo")
    demo.add_argument("outdir"); demo.add_argument("--now", type=int)
    s = sub.add_parser("safety-number")
    for x in ("name1", "key1", "name2", "key2"):
        s.add_argument(x)
    a = ap.parse_args()
    try:
        if a.cmd == "make-demo":
            return make_demo(a.outdir, a.now) or 0
        if a.cmd == "safety-number":
            print(safety_number(fingerprint(a.name1.encode(), bytes.fromhex(a.key1)),
                                fingerprint(a.name2.encode(), bytes.fromhex(a.key2))))
            return 0
        pin = bytes.fromhex(a.genesis) if a.genesis else None
        pinned = None
        if a.pinned:
            with open(a.pinned, "rb") as f:
                pinned = f.read(MAX_FILE + 1)
        with open(a.file, "rb") as f:
            state = verify_bytes(f.read(MAX_FILE + 1), pin, a.now, pinned)
    except Refused as e:
        print(e)
        return 1
    except (OSError, ValueError) as e:
        print("directory.py: %s" % e, file=sys.stderr)
        return 2
    if a.json:
        print(json.dumps(state, indent=2, sort_keys=True))
        return 0
    if pin is None and pinned is None:
        print("NOT PINNED: the genesis was taken from the file itself")
    print_state(state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
