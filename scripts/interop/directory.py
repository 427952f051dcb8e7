#!/usr/bin/env python3
"""Independent implementation of the Valise organisation directory, written from
docs/PROTOCOL.md alone (Conventions, Signatures, Fingerprints, Directory, Requests and
public-key files, Directory files, Safety numbers) to check that the document is
byte-exact. It shares no code with the Swift implementation.

Libraries: PyNaCl (Ed25519), hashlib (BLAKE2b, SHA-512).    pip install pynacl

    directory.py verify FILE [--genesis HEX] [--now SECONDS] [--json]
    directory.py make-demo OUTDIR
    directory.py safety-number NAME1 KEY1 NAME2 KEY2

`verify` reads a log (VALISEDL) or a bundle (VALISEOB), checks every entry against the
Verification table and prints the resulting directory. On the first refusal it prints
"entry N: RULE: what: why" and exits 1 (2 for bad usage or an unreadable file).
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
         6: "revoke", 7: "change admins", 8: "certify checkpoint key"}
LABEL = re.compile(rb"[a-z0-9][a-z0-9._-]{0,63}\Z")


class Refused(Exception):
    """An entry (or the bundle's checkpoint) broke a rule of the Verification table."""
    def __init__(self, seq, rule, why):
        super().__init__("entry %s: %s: %s" % (seq, rule, why))
        self.seq, self.rule = seq, rule


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
    try:
        VerifyKey(pk).verify(b"valise/v1/" + purpose + b"\x00" + msg, sig)
        return True
    except (BadSignatureError, ValueError):
        return False


def fingerprint(name: bytes, key: bytes) -> str:
    # Used for admins too (admin name, signing key), as Valise shows them.
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
        # "refused if not a canonical point of the prime-order subgroup": libsodium's
        # check, which also refuses small-order points (the identity included), as Valise.
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
    # Bodies says "u8 N (1 to 32)" while the `admins` rule lists "0 or more than 32
    # admins" too. Valise refuses such a set as undecodable (malformed); so does this.
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
    elif kind == 2:
        b["name"], b["address"] = r.name("relay name"), r.text("relay address", 255)
        b["noise"], b["sign"], b["proof"] = r.take(32), r.ed("relay signing key"), r.take(64)
    elif kind == 3:
        b["name"] = r.name("relay name")
    elif kind == 4:
        b["member"], b["ik"], b["tk"] = r.name("member", True), r.ed("identity key"), r.take(32)
        b["created"], b["sig"] = r.u64(), r.take(64)
        b["mission"], b["role"] = r.text("mission", 200), r.text("role", 64)
    elif kind == 5:
        b["member"], b["old"] = r.name("member", True), r.ed("old identity key")
        b["ik"], b["tk"], b["created"] = r.ed("new identity key"), r.take(32), r.u64()
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
        b["key"] = r.ed("checkpoint key")
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
    # Signer keys are checked like body keys (Valise does; the document only says
    # "the signer's 32-byte Ed25519 public key"). Strictly ascending: one encoding.
    e["sigs"] = [(r.ed("signer key"), r.take(64)) for _ in range(s)]
    if any(a[0] >= b[0] for a, b in zip(e["sigs"], e["sigs"][1:])):
        raise ValueError("signatures not sorted by signer key, or a signer twice")
    r.done("signatures")
    e["body"] = decode_body(e["kind"], body)
    return e


def decode_file(data: bytes):
    """-> (decoded entries, bundle genesis hash or None, checkpoint tuple or None).

    The whole file is decoded before any rule is checked, as Valise does (the document
    does not say): a malformed entry anywhere is reported before a rule broken earlier."""
    r = Reader(data)
    try:
        if len(data) > MAX_FILE:
            raise ValueError("file larger than 512 MiB")
        magic = r.take(8) if len(data) >= 9 else b""
        if magic not in (b"VALISEDL", b"VALISEOB") or r.u8() != 1:
            raise ValueError("not a version-1 directory log or bundle")
        genesis = r.take(32) if magic == b"VALISEOB" else None
        count = r.u32()
        if count > MAX_ENTRIES:
            raise ValueError("%d entries > 10,000,000" % count)
        if count * FRAMED_MIN > len(data) - r.at:     # refused before allocating anything
            raise ValueError("count %d cannot fit in %d bytes" % (count, len(data) - r.at))
    except ValueError as why:
        raise Refused(0, "malformed", str(why))
    entries = []
    for i in range(count):
        try:
            entries.append(decode_entry(r.take(r.u32())))
        except ValueError as why:
            raise Refused(i, "malformed", str(why))
    cp = None
    try:
        has = r.u8() if genesis is not None else 0
        if has not in (0, 1):
            raise ValueError("has-checkpoint is %d" % has)
        if has:   # u8 1 ‖ u64 sequence ‖ head hash ‖ u64 time ‖ key ‖ signature
            raw = r.take(CHECKPOINT_LEN)
            c = Reader(raw)
            cp = (c.u8(), c.u64(), c.take(32), c.u64(), c.ed("checkpoint key"), c.take(64), raw)
            if cp[0] != 1:
                raise ValueError("checkpoint version %d" % cp[0])
        r.done("last entry" if genesis is None else "bundle")
    except ValueError as why:
        raise Refused(count, "malformed", str(why))
    return entries, genesis, cp


# ---- verification -----------------------------------------------------------------------

def valid_address(a: str) -> bool:
    # The document says only "HOST:PORT with a port from 1 to 65535". As Valise does (found
    # by experiment): split at the last ':', a non-empty HOST without ' ' or '/' (brackets
    # are not checked), a PORT of decimal digits (leading zeros allowed).
    m = re.fullmatch(r"([^ /]+):([0-9]+)", a)
    return bool(m) and 1 <= int(m.group(2)) <= 65535


class Directory:
    def __init__(self, pin=None, now=None):
        self.pin, self.now = pin, int(time.time()) if now is None else now
        self.hashes, self.time = [], None
        self.org = self.warn = self.refuse = None
        self.admins, self.k = [], 0
        self.members, self.revoked, self.relays = {}, set(), {}
        self.checkpoint_keys, self.used = [], set()   # used: ("ed" | "x", key bytes)

    def apply(self, e: dict) -> None:
        """Check one entry against the state left by the previous ones, rule by rule in
        the order of the Verification table, then apply it."""
        n, b, kind, seq = len(self.hashes), e["body"], e["kind"], e["seq"]

        def need(ok, rule, why):
            if not ok:
                raise Refused(seq, rule, "%s: %s" % (summary(kind, b), why))
        need(kind == 1 if n == 0 else kind != 1, "genesis",
             "the first entry must be a genesis, and only the first")
        need(kind != 1 or 0 < b["warn"] <= b["refuse"], "genesis",
             "warn-after is 0 or exceeds refuse-after")
        need(n > 0 or self.pin is None or e["hash"] == self.pin, "genesis-pin",
             "its hash %s is not the pinned genesis" % e["hash"].hex())
        need(seq == n, "sequence", "sequence %d, expected %d" % (seq, n))
        need(e["prev"] == (self.hashes[-1] if n else ZERO), "chain",
             "its previous hash is not entry %d's hash" % (n - 1) if n else
             "a genesis's previous hash must be zero")
        need(self.time is None or e["time"] >= self.time, "time",
             "dated %d, before the previous entry (%d)" % (e["time"], self.time or 0))
        need(e["time"] <= self.now + SKEW, "future",
             "dated %d, more than %d s after now (%d)" % (e["time"], SKEW, self.now))
        # Signer and threshold: the admins in force *before* the entry (genesis: its own).
        # All signers are checked before any signature (Valise interleaves the two).
        admins, k = (b["admins"], b["k"]) if kind == 1 else (self.admins, self.k)
        for pk, _ in e["sigs"]:
            need(pk in {a["sign"] for a in admins}, "signer", "%s is not an admin" % pk.hex())
        for pk, sig in e["sigs"]:
            need(verifies(pk, b"directory-entry", e["signed"], sig), "signature",
                 "the signature by %s does not verify" % pk.hex())
        need(len(e["sigs"]) >= k, "threshold", "%d signatures, %d needed" % (len(e["sigs"]), k))
        if kind in (1, 7):
            na = len(b["admins"])
            need(1 <= b["k"] <= na, "admins", "threshold %d with %d admins" % (b["k"], na))
            for f in ("name", "sign", "x"):
                need(len({a[f] for a in b["admins"]}) == na, "admins",
                     "two admins share a name, signing key or transport key")
        m = self.members.get(b.get("member"))
        active = m is not None and m["status"] == "active"
        need(kind != 4 or not active, "member", "%s is an active member" % b.get("member"))
        need(not (kind == 5 or kind == 6 and b["member"]) or active, "member",
             "%s is not a member or is revoked" % b.get("member"))
        need(kind != 5 or b["old"] == m["ik"], "member",
             "the old key is not the member's current identity key")
        owner = None
        if kind == 6 and b["key"]:
            owner = next((x for x in self.members.values()
                          if b["key"] == x["ik"] or b["key"] in x["earlier"]), None)
            need(b["key"] not in self.revoked and owner, "member",
                 "the key is already revoked, or no member has or had it")
        # Keys never used before by anyone. The document leaves open what "a key" is; as
        # Valise does, an Ed25519 and an X25519 key are different keys even with equal
        # bytes, only earlier entries count, and any key of an admin in force may appear
        # in a new admin set ("admins who stay in a new admin set keep their keys").
        fresh = {2: [("x", "noise"), ("ed", "sign")], 4: [("ed", "ik"), ("x", "tk")],
                 5: [("ed", "ik"), ("x", "tk")], 8: [("ed", "key")]}
        new = [(t, b[f]) for t, f in fresh.get(kind, [])]
        if kind in (1, 7):
            keep = {("ed", a["sign"]) for a in self.admins} | {("x", a["x"]) for a in self.admins}
            new = [t for a in b["admins"] for t in (("ed", a["sign"]), ("x", a["x"]))
                   if t not in keep]
        need(not any(t in self.used for t in new), "key-reuse", "a new key was used before")
        if kind == 2:
            need(verifies(b["sign"], b"relay-public-key", b["noise"] + b["sign"], b["proof"]),
                 "request", "the relay's proof does not verify")
        enrolment = lambda: statement(1, b["member"], [b["ik"], b["tk"]], b["created"])
        if kind == 4 or kind == 5 and not b["countersigned"]:
            # enroll, and a lost-device rotation: the new key signs an enrollment statement.
            need(verifies(b["ik"], b"enrollment-request", enrolment(), b["sig"]), "request",
                 "the enrollment request signature does not verify")
        elif kind == 5:   # countersigned: new and old key both sign the rotation statement
            st = statement(2, b["member"], [b["old"], b["ik"], b["tk"]], b["created"])
            need(verifies(b["ik"], b"rotation-request", st, b["sig"])
                 and verifies(b["old"], b"rotation-request", st, b["oldsig"]), "request",
                 "a rotation request signature does not verify")
        if kind == 2:
            need(b["name"] not in self.relays, "relay", "relay %s exists" % b["name"])
            need(valid_address(b["address"]), "relay",
                 "address %r is not HOST:PORT with a port 1-65535" % b["address"])
        need(kind != 3 or b["name"] in self.relays, "relay", "no relay %s" % b.get("name"))

        self.used.update(new)
        self.hashes.append(e["hash"])
        self.time = e["time"]
        if kind == 1:
            self.org, self.warn, self.refuse = b["org"], b["warn"], b["refuse"]
        if kind in (1, 7):
            self.admins, self.k = b["admins"], b["k"]
        elif kind == 2:
            self.relays[b["name"]] = {f: b[f] for f in ("address", "noise", "sign")}
        elif kind == 3:
            del self.relays[b["name"]]
        elif kind == 4:
            # A revoked member enrolled again gets a fresh record here (Valise keeps the
            # earlier keys of the old record; the document does not say).
            self.members[b["member"]] = {"name": b["member"], "mission": b["mission"],
                                         "role": b["role"], "ik": b["ik"], "tk": b["tk"],
                                         "enrolled": seq, "status": "active", "earlier": {}}
        elif kind == 5:   # earlier keys: the rotation entry that retired them, countersigned
            m["earlier"][m["ik"]] = (seq, b["countersigned"])
            m["ik"], m["tk"] = b["ik"], b["tk"]
        elif kind == 6:
            target = owner or m
            if b["key"]:
                self.revoked.add(b["key"])
            if b["member"] or b["key"] == target["ik"]:
                # "revoked identity keys (a revoked member's current and earlier keys; ...)":
                # also when the member is revoked through its current key (Valise then
                # revokes that key only).
                target.update(status="revoked", reason=b["reason"], revokedAt=seq)
                self.revoked.update([target["ik"], *target["earlier"]])
        elif kind == 8:
            self.checkpoint_keys.append((seq, b["key"]))

    def check_checkpoint(self, version, seq, head, at, key, sig, raw) -> dict:
        if seq >= len(self.hashes):
            raise Refused(seq, "checkpoint", "it is beyond the log: the log is behind")
        if self.hashes[seq] != head:
            raise Refused(seq, "fork", "the checkpoint's head hash is not the log's")
        certified = [k for s, k in self.checkpoint_keys if s <= seq]
        if not certified or certified[-1] != key:
            raise Refused(seq, "checkpoint", "not the checkpoint key certified at that point")
        if not verifies(key, b"checkpoint", raw[:49], sig):   # covers the first four fields
            raise Refused(seq, "checkpoint", "the checkpoint signature does not verify")
        return {"sequence": seq, "time": iso(at)}

    def state(self) -> dict:
        def member(m):
            out = {"name": m["name"], "mission": m["mission"], "role": m["role"],
                   "status": m["status"], "fingerprint": fingerprint(m["name"].encode(), m["ik"]),
                   "identityKey": m["ik"].hex(), "transportKey": m["tk"].hex(),
                   "rotations": len(m["earlier"]), "enrolledAt": m["enrolled"]}
            if m["status"] == "revoked":
                out.update(revocationReason=m["reason"], revokedAt=m["revokedAt"])
            return out
        out = {"organisation": self.org, "genesis": self.hashes[0].hex(),
               "entries": len(self.hashes), "headHash": self.hashes[-1].hex(),
               "headTime": iso(self.time), "warnAfter": self.warn, "refuseAfter": self.refuse,
               "threshold": self.k,
               "admins": [{"name": a["name"], "signingKey": a["sign"].hex(),
                           "fingerprint": fingerprint(a["name"].encode(), a["sign"]),
                           "transportKey": a["x"].hex()} for a in self.admins],
               "members": [member(self.members[n]) for n in sorted(self.members)],
               "revokedKeys": len(self.revoked),
               "relays": [{"name": n, "address": v["address"], "noiseKey": v["noise"].hex(),
                           "signingKey": v["sign"].hex()} for n, v in sorted(self.relays.items())]}
        if self.checkpoint_keys:
            out["checkpointKey"] = self.checkpoint_keys[-1][1].hex()
        return out


def summary(kind, b):
    what = b.get("member") or b.get("name") or (b["key"].hex()[:16] + "…" if b.get("key") else "")
    return ("%s %s" % (KINDS[kind], what)).strip()


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def verify_bytes(data: bytes, pin=None, now=None) -> dict:
    entries, bundle_genesis, cp = decode_file(data)
    if not entries:
        raise Refused(0, "genesis", "the file holds no entries")
    # "The genesis hash must equal the first entry's hash": no rule is named; checked like
    # a pin, before the entries, as Valise does.
    if bundle_genesis is not None and bundle_genesis != entries[0]["hash"]:
        raise Refused(0, "genesis-pin", "the bundle's genesis hash is not its first entry's")
    d = Directory(pin, now)
    for e in entries:
        d.apply(e)
    out = d.state()
    if cp:
        out["checkpoint"] = d.check_checkpoint(*cp)
    return out


# ---- make-demo ----------------------------------------------------------------------------

def entry_bytes(seq, prev, ts, kind, body, signers):
    signed = b"\x01" + u64(seq) + prev + u64(ts) + bytes([kind]) + u32(len(body)) + body
    sigs = sorted((sk.verify_key.encode(), sign(sk, b"directory-entry", signed)) for sk in signers)
    return signed + bytes([len(sigs)]) + b"".join(pk + s for pk, s in sigs), blake32(signed)


def enrollment(member: str, sk, tk, created):
    st = statement(1, member, [sk.verify_key.encode(), tk], created)
    return st, sign(sk, b"enrollment-request", st)


def make_demo(out: str) -> None:
    """A 2-of-3 organisation: genesis, two enrollments, a countersigned rotation, a
    lost-device rotation, a revocation, a relay, a checkpoint key, and a checkpoint."""
    os.makedirs(out, exist_ok=True)
    now = int(time.time())
    admins = [(n, SigningKey.generate(), x25519_public()) for n in ("ana", "ben", "chloe")]
    log, hashes = [], [ZERO]

    def add(kind, body):   # dated a little in the past; signed by a varying 2 of the 3
        signers = [admins[len(log) % 3][1], admins[(len(log) + 1) % 3][1]]
        raw, h = entry_bytes(len(log), hashes[-1], now - 100 + len(log), kind, body, signers)
        log.append(raw)
        hashes.append(h)
    add(1, str16("Ministère de l'Intérieur".encode()) + bytes([3])
        + b"".join(str16(n.encode()) + sk.verify_key.encode() + x for n, sk, x in admins)
        + bytes([2]) + u32(2 * 86400) + u32(7 * 86400))
    dev = {}
    for member, mission, role in (("dina@quito", "Quito", "consul"),
                                  ("emil@oslo", "Embassy in Oslo", "attaché")):
        dev[member] = sk = SigningKey.generate()
        st, sig = enrollment(member, sk, x25519_public(), now - 200)
        add(4, st[1:] + sig + str16(mission.encode()) + str16(role.encode()))
    new, tk = SigningKey.generate(), x25519_public()     # countersigned rotation
    old = dev["dina@quito"].verify_key.encode()
    st = statement(2, "dina@quito", [old, new.verify_key.encode(), tk], now - 90)
    add(5, st[1:] + sign(new, b"rotation-request", st) + b"\x01"
        + sign(dev["dina@quito"], b"rotation-request", st))
    new, tk = SigningKey.generate(), x25519_public()     # lost device: no old-key signature
    st, sig = enrollment("emil@oslo", new, tk, now - 80)
    add(5, str16(b"emil@oslo") + dev["emil@oslo"].verify_key.encode()
        + new.verify_key.encode() + tk + u64(now - 80) + sig + b"\x00")
    add(6, b"\x01" + str16(b"emil@oslo") + str16(b"device seized at the border"))
    relay, noise = SigningKey.generate(), x25519_public()
    rpk = relay.verify_key.encode()
    add(2, str16(b"relay-1") + str16(b"relay.example.net:8443") + noise + rpk
        + sign(relay, b"relay-public-key", noise + rpk))
    cpk = SigningKey.generate()
    add(8, cpk.verify_key.encode())
    cp = b"\x01" + u64(len(log) - 1) + hashes[-1] + u64(now - 10)
    cp += cpk.verify_key.encode() + sign(cpk, b"checkpoint", cp)
    framed = u32(len(log)) + b"".join(u32(len(e)) + e for e in log)
    files = {"demo.log": b"VALISEDL\x01" + framed,
             "demo.bundle": b"VALISEOB\x01" + hashes[1] + framed + b"\x01" + cp}
    # An enrollment request for a member not in the log, and an admin public-key file
    # (its signature covers the bytes from the version to `created`, not the magic).
    req = SigningKey.generate()
    st, sig = enrollment("farah@dakar", req, x25519_public(), now)
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
    print("genesis %s\nfarah@dakar %s\nadmin gaspard %s" % (
        hashes[1].hex(), fingerprint(b"farah@dakar", req.verify_key.encode()),
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
        print("  %-24s %-16s %-16s %-7s %s  %d rotation(s)" % (m["name"], m["mission"],
              m["role"], m["status"], m["fingerprint"], m["rotations"]))
    print("revoked keys:   %d" % s["revokedKeys"])
    for r in s["relays"]:
        print("relay:          %s %s noise key %s" % (r["name"], r["address"], r["noiseKey"]))
    print("checkpoint key: %s" % s.get("checkpointKey", "none"))
    if "checkpoint" in s:
        print("checkpoint:     entry %d at %s" % (s["checkpoint"]["sequence"], s["checkpoint"]["time"]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("verify")
    v.add_argument("file"); v.add_argument("--genesis"); v.add_argument("--now", type=int)
    v.add_argument("--json", action="store_true")
    sub.add_parser("make-demo").add_argument("outdir")
    s = sub.add_parser("safety-number")
    for x in ("name1", "key1", "name2", "key2"):
        s.add_argument(x)
    a = ap.parse_args()
    try:
        if a.cmd == "make-demo":
            return make_demo(a.outdir) or 0
        if a.cmd == "safety-number":
            print(safety_number(fingerprint(a.name1.encode(), bytes.fromhex(a.key1)),
                                fingerprint(a.name2.encode(), bytes.fromhex(a.key2))))
            return 0
        pin = bytes.fromhex(a.genesis) if a.genesis else None
        with open(a.file, "rb") as f:
            state = verify_bytes(f.read(MAX_FILE + 1), pin, a.now)
    except Refused as e:
        print(e)
        return 1
    except (OSError, ValueError) as e:
        print("directory.py: %s" % e, file=sys.stderr)
        return 2
    if a.json:
        print(json.dumps(state, indent=2, sort_keys=True))
        return 0
    if pin is None:
        print("NOT PINNED: the genesis was taken from the file itself")
    print_state(state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
