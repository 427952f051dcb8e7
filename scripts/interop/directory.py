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
Verification table and prints the resulting directory; on the first refusal it prints
"entry N: RULE: why" and exits 1.
"""
import argparse, hashlib, json, os, re, struct, sys, time, unicodedata

from nacl import bindings as sodium
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

MAX_FILE = 512 * 1024 * 1024
MAX_ENTRIES = 10_000_000
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
        self.seq, self.rule, self.why = seq, rule, why


# ---- primitives -------------------------------------------------------------------------

def u16(n): return struct.pack(">H", n)
def u32(n): return struct.pack(">I", n)
def u64(n): return struct.pack(">Q", n)
def str16(b): return u16(len(b)) + b
def blake32(b): return hashlib.blake2b(b, digest_size=32).digest()


def sign(sk: SigningKey, purpose: bytes, msg: bytes) -> bytes:
    # "valise/v1/" ‖ purpose ‖ 0x00 ‖ message; the zero byte ends the label.
    return sk.sign(b"valise/v1/" + purpose + b"\x00" + msg).signature


def verifies(pk: bytes, purpose: bytes, msg: bytes, sig: bytes) -> bool:
    try:
        VerifyKey(pk).verify(b"valise/v1/" + purpose + b"\x00" + msg, sig)
        return True
    except (BadSignatureError, ValueError):
        return False


def fingerprint(name: bytes, key: bytes) -> str:
    d = hashlib.sha512(b"valise/v1/fingerprint\x00" + u16(len(name)) + name + key).digest()
    for _ in range(5199):                       # 5200 SHA-512 in all
        d = hashlib.sha512(d + key).digest()
    return " ".join("%05d" % (int.from_bytes(d[5 * i:5 * i + 5], "big") % 100000)
                    for i in range(6))


def safety_number(fp_a: str, fp_b: str) -> str:
    # Fingerprints as 30-digit strings (spaces dropped), sorted, joined, 12 groups of 5.
    digits = "".join(sorted([fp_a.replace(" ", ""), fp_b.replace(" ", "")]))
    return " ".join(digits[i:i + 5] for i in range(0, 60, 5))


# ---- decoding ---------------------------------------------------------------------------

class Reader:
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
        # Ed25519 keys must be canonical points of the prime-order subgroup. libsodium's
        # check (used here) also refuses small-order points, the identity included.
        k = self.take(32)
        if not sodium.crypto_core_ed25519_is_valid_point(k):
            raise ValueError("%s is not a valid Ed25519 public key" % what)
        return k

    def label(self, what):
        s = self.take(self.u16())
        if not LABEL.match(s):
            raise ValueError("%s %r is not a label" % (what, s))
        return s.decode()

    def member(self):
        s = self.take(self.u16())
        parts = s.split(b"@")
        if len(parts) != 2 or not all(LABEL.match(p) for p in parts):
            raise ValueError("member name %r is not person@mission" % s)
        return s.decode()

    def text(self, what, limit):
        # UTF-8, 1 byte to `limit` bytes, no character of general category Cc.
        s = self.take(self.u16())
        try:
            t = s.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("%s is not UTF-8" % what)
        if not 1 <= len(s) <= limit or any(unicodedata.category(c) == "Cc" for c in t):
            raise ValueError("%s is empty, longer than %d bytes or has control characters"
                             % (what, limit))
        return t

    def done(self, what):
        if self.at != len(self.d):
            raise ValueError("%d bytes left over after the %s" % (len(self.d) - self.at, what))


def admin_set(r: Reader) -> dict:
    n = r.u8()   # 0 or > 32 is left to the `admins` rule, as the table says
    admins = [{"name": r.label("admin name"), "sign": r.ed("admin signing key"),
               "x": r.take(32)} for _ in range(n)]
    return {"admins": admins, "k": r.u8()}


def decode_body(kind: int, body: bytes) -> dict:
    r, b = Reader(body), {}
    if kind == 1:
        b["org"] = r.text("organisation", 200)
        b.update(admin_set(r))
        b["warn"], b["refuse"] = r.u32(), r.u32()
    elif kind == 2:
        b["name"], b["address"] = r.label("relay name"), r.text("relay address", 255)
        b["noise"], b["sign"], b["proof"] = r.take(32), r.ed("relay signing key"), r.take(64)
    elif kind == 3:
        b["name"] = r.label("relay name")
    elif kind == 4:
        b["member"], b["ik"], b["tk"] = r.member(), r.ed("identity key"), r.take(32)
        b["created"], b["sig"] = r.u64(), r.take(64)
        b["mission"], b["role"] = r.text("mission", 200), r.text("role", 64)
    elif kind == 5:
        b["member"], b["old"], b["ik"] = r.member(), r.ed("old identity key"), r.ed("new identity key")
        b["tk"], b["created"], b["sig"] = r.take(32), r.u64(), r.take(64)
        c = r.u8()
        if c not in (0, 1):
            raise ValueError("countersigned flag is %d" % c)
        b["countersigned"], b["oldsig"] = c == 1, r.take(64) if c else None
    elif kind == 6:
        t = r.u8()
        if t == 1:
            b["member"], b["key"] = r.member(), None
        elif t == 2:
            b["member"], b["key"] = None, r.ed("revoked identity key")
        else:
            raise ValueError("revoke target is %d" % t)
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
    e["body_raw"] = r.take(length)
    e["signed"] = raw[:r.at]
    e["hash"] = blake32(e["signed"])
    s = r.u8()
    if s > MAX_SIGS:
        raise ValueError("%d signatures > %d" % (s, MAX_SIGS))
    e["sigs"] = [(r.ed("signer key"), r.take(64)) for _ in range(s)]
    # Sorted by signer key, strictly ascending: one encoding per set of signatures.
    if any(a[0] >= b[0] for a, b in zip(e["sigs"], e["sigs"][1:])):
        raise ValueError("signatures not sorted by signer key or a signer appears twice")
    r.done("signatures")
    e["body"] = decode_body(e["kind"], e["body_raw"])
    return e


def read_file(data: bytes):
    """-> (entries as raw bytes, bundle genesis hash or None, raw checkpoint or None)."""
    if len(data) > MAX_FILE:
        raise Refused(0, "malformed", "file larger than 512 MiB")
    r = Reader(data)
    magic = r.take(8) if len(data) >= 9 else b""
    if magic not in (b"VALISEDL", b"VALISEOB") or r.u8() != 1:
        raise Refused(0, "malformed", "not a version-1 directory log or bundle")
    try:
        pinned = r.take(32) if magic == b"VALISEOB" else None
        count = r.u32()
        if count > MAX_ENTRIES:
            raise ValueError("%d entries > 10,000,000" % count)
        if count * FRAMED_MIN > len(data) - r.at:   # refused before anything is allocated
            raise ValueError("count %d cannot fit in the %d bytes left" % (count, len(data) - r.at))
    except ValueError as why:
        raise Refused(0, "malformed", str(why))
    raws = []
    for i in range(count):
        try:
            raws.append(r.take(r.u32()))
        except ValueError as why:
            raise Refused(i, "malformed", str(why))
    checkpoint = None
    try:
        if pinned is not None:
            has = r.u8()
            if has not in (0, 1):
                raise ValueError("has-checkpoint is %d" % has)
            checkpoint = r.take(CHECKPOINT_LEN) if has else None
        r.done("last entry" if pinned is None else "bundle")
    except ValueError as why:
        raise Refused(count, "malformed", str(why))
    return raws, pinned, checkpoint


# ---- verification -----------------------------------------------------------------------

def statement(kind, member, keys, created):
    # enrollment: u8 1 ‖ str16 member ‖ ik ‖ tk ‖ u64 created
    # rotation:   u8 2 ‖ str16 member ‖ old ik ‖ new ik ‖ new tk ‖ u64 created
    return bytes([kind]) + str16(member.encode()) + b"".join(keys) + u64(created)


def valid_address(a: str) -> bool:
    # HOST:PORT with a port 1..65535 (decimal digits). An IPv6 host is written in brackets.
    m = re.fullmatch(r"(.+):([0-9]{1,5})", a)
    if not m or not 1 <= int(m.group(2)) <= 65535:
        return False
    host = m.group(1)
    return ":" not in host or (host.startswith("[") and host.endswith("]"))


class Directory:
    def __init__(self, pin=None, now=None):
        self.pin, self.now = pin, int(time.time()) if now is None else now
        self.hashes, self.last_time = [], None
        self.org = self.warn = self.refuse = None
        self.admins, self.k = [], 0
        self.members, self.revoked, self.relays = {}, set(), {}
        self.checkpoint_keys, self.used = [], set()

    def apply(self, e: dict) -> None:
        """Check one decoded entry against the state so far, in the table's order; apply it."""
        n, b, kind, seq = len(self.hashes), e["body"], e["kind"], e["seq"]

        def refuse(rule, why):
            raise Refused(seq, rule, "%s: %s" % (summary(kind, b), why))
        if n == 0 and kind != 1:
            refuse("genesis", "the first entry is not a genesis")
        if n > 0 and kind == 1:
            refuse("genesis", "a genesis after the first entry")
        if kind == 1 and not 0 < b["warn"] <= b["refuse"]:
            refuse("genesis", "warn-after is 0 or exceeds refuse-after")
        if n == 0 and self.pin is not None and e["hash"] != self.pin:
            refuse("genesis-pin", "genesis hash %s is not the pinned %s"
                   % (e["hash"].hex(), self.pin.hex()))
        if seq != n:
            refuse("sequence", "sequence %d, expected %d" % (seq, n))
        if e["prev"] != (self.hashes[-1] if n else ZERO):
            refuse("chain", "previous hash is not entry %d's hash" % (n - 1) if n else
                   "a genesis's previous hash must be zero")
        if self.last_time is not None and e["time"] < self.last_time:
            refuse("time", "timestamp %d is earlier than the previous %d"
                   % (e["time"], self.last_time))
        if e["time"] > self.now + SKEW:
            refuse("future", "timestamp %d is more than %d s after now (%d)"
                   % (e["time"], SKEW, self.now))
        # Signers and threshold: the admins in force *before* the entry; the genesis's own.
        admins, k = (b["admins"], b["k"]) if kind == 1 else (self.admins, self.k)
        signers = {a["sign"] for a in admins}
        for pk, _ in e["sigs"]:
            if pk not in signers:
                refuse("signer", "%s is not an admin in force" % pk.hex())
        for pk, sig in e["sigs"]:
            if not verifies(pk, b"directory-entry", e["signed"], sig):
                refuse("signature", "the signature by %s does not verify" % pk.hex())
        if len(e["sigs"]) < k:
            refuse("threshold", "%d signatures, %d needed" % (len(e["sigs"]), k))
        if kind in (1, 7):
            na, names = len(b["admins"]), [a["name"] for a in b["admins"]]
            if not 1 <= na <= 32 or not 1 <= b["k"] <= na:
                refuse("admins", "%d admins with threshold %d" % (na, b["k"]))
            for f, vals in (("name", names), ("signing key", [a["sign"] for a in b["admins"]]),
                            ("transport key", [a["x"] for a in b["admins"]])):
                if len(set(vals)) != len(vals):
                    refuse("admins", "two admins share a %s" % f)
        m = self.members.get(b.get("member"))
        active = m is not None and m["status"] == "active"
        if kind == 4 and active:
            refuse("member", "%s is already an active member" % b["member"])
        if kind == 5 or (kind == 6 and b["member"]):
            if not active:
                refuse("member", "%s is not a member or is revoked" % b["member"])
        if kind == 5 and b["old"] != m["ik"]:
            refuse("member", "the old key is not %s's current identity key" % b["member"])
        owner = None
        if kind == 6 and b["key"]:
            owner = next((x for x in self.members.values()
                          if b["key"] == x["ik"] or b["key"] in x["earlier"]), None)
            if b["key"] in self.revoked or owner is None:
                refuse("member", "key %s is already revoked or no member has or had it"
                       % b["key"].hex())
        # Keys that must never have been used by anyone (admins who stay keep theirs).
        fresh = {2: ["noise", "sign"], 4: ["ik", "tk"], 5: ["ik", "tk"], 8: ["key"]}
        new = [b[f] for f in fresh.get(kind, [])]
        if kind in (1, 7):
            keep = {(a["name"], a["sign"], a["x"]) for a in self.admins}
            new = [x for a in b["admins"] if (a["name"], a["sign"], a["x"]) not in keep
                   for x in (a["sign"], a["x"])]
        if any(x in self.used for x in new) or len(set(new)) != len(new):
            refuse("key-reuse", "a new key was used before")
        if kind == 2 and not verifies(b["sign"], b"relay-public-key", b["noise"] + b["sign"],
                                      b["proof"]):
            refuse("request", "the relay's proof does not verify")
        if kind == 4 and not verifies(b["ik"], b"enrollment-request", statement(
                1, b["member"], [b["ik"], b["tk"]], b["created"]), b["sig"]):
            refuse("request", "the enrollment request signature does not verify")
        if kind == 5:
            if b["countersigned"]:   # both keys sign the rotation statement
                st = statement(2, b["member"], [b["old"], b["ik"], b["tk"]], b["created"])
                ok = (verifies(b["ik"], b"rotation-request", st, b["sig"])
                      and verifies(b["old"], b"rotation-request", st, b["oldsig"]))
            else:                    # lost device: the new key signs an enrollment statement
                ok = verifies(b["ik"], b"enrollment-request", statement(
                    1, b["member"], [b["ik"], b["tk"]], b["created"]), b["sig"])
            if not ok:
                refuse("request", "a rotation signature does not verify")
        if kind == 2 and b["name"] in self.relays:
            refuse("relay", "relay name %s is in use" % b["name"])
        if kind == 2 and not valid_address(b["address"]):
            refuse("relay", "address %r is not HOST:PORT (port 1-65535)" % b["address"])
        if kind == 3 and b["name"] not in self.relays:
            refuse("relay", "no relay named %s" % b["name"])
        self.used.update(new)
        self.hashes.append(e["hash"])
        self.last_time, self.head_time = e["time"], e["time"]
        if kind == 1:
            self.org, self.warn, self.refuse = b["org"], b["warn"], b["refuse"]
        if kind in (1, 7):
            self.admins, self.k = b["admins"], b["k"]
        elif kind == 2:
            self.relays[b["name"]] = {k2: b[k2] for k2 in ("address", "noise", "sign")}
        elif kind == 3:
            del self.relays[b["name"]]
        elif kind == 4:   # a revoked member enrolled again starts a fresh record
            self.members[b["member"]] = {"name": b["member"], "mission": b["mission"],
                                         "role": b["role"], "ik": b["ik"], "tk": b["tk"],
                                         "enrolled": seq, "status": "active", "earlier": {}}
        elif kind == 5:
            m["earlier"][m["ik"]] = (seq, b["countersigned"])
            m["ik"], m["tk"] = b["ik"], b["tk"]
        elif kind == 6:
            target = owner or m
            if b["key"]:
                self.revoked.add(b["key"])
            if b["member"] or b["key"] == target["ik"]:
                # A revoked member's current and earlier keys are all revoked.
                target.update(status="revoked", reason=b["reason"], revokedAt=seq)
                self.revoked.update([target["ik"], *target["earlier"]])
        elif kind == 8:
            self.checkpoint_keys.append((seq, b["key"]))

    def check_checkpoint(self, raw: bytes, seq, head, at, key, sig) -> dict:
        if seq >= len(self.hashes):
            raise Refused(seq, "checkpoint", "the checkpoint is beyond the log: the log is behind")
        if self.hashes[seq] != head:
            raise Refused(seq, "fork", "the checkpoint's head hash differs from the log's")
        certified = [k for s, k in self.checkpoint_keys if s <= seq]
        if not certified or certified[-1] != key:
            raise Refused(seq, "checkpoint", "not signed by the key certified at that point")
        if not verifies(key, b"checkpoint", raw[:49], sig):
            raise Refused(seq, "checkpoint", "the checkpoint signature does not verify")
        return {"sequence": seq, "time": at}

    def state(self) -> dict:
        def member(m):
            return {"name": m["name"], "mission": m["mission"], "role": m["role"],
                    "status": m["status"], "fingerprint": fingerprint(m["name"].encode(), m["ik"]),
                    "identityKey": m["ik"].hex(), "transportKey": m["tk"].hex(),
                    "rotations": len(m["earlier"]), "enrolledAt": m["enrolled"],
                    **({"revocationReason": m["reason"], "revokedAt": m["revokedAt"]}
                       if m["status"] == "revoked" else {})}
        return {
            "organisation": self.org, "genesis": self.hashes[0].hex(),
            "entries": len(self.hashes), "headHash": self.hashes[-1].hex(),
            "headTime": iso(self.head_time), "warnAfter": self.warn, "refuseAfter": self.refuse,
            "threshold": self.k,
            "admins": [{"name": a["name"], "fingerprint": fingerprint(a["name"].encode(), a["sign"]),
                        "signingKey": a["sign"].hex(), "transportKey": a["x"].hex()}
                       for a in self.admins],
            "members": [member(self.members[n]) for n in sorted(self.members)],
            "revokedKeys": len(self.revoked),
            "relays": [{"name": n, "address": v["address"], "noiseKey": v["noise"].hex(),
                        "signingKey": v["sign"].hex()} for n, v in sorted(self.relays.items())],
            **({"checkpointKey": self.checkpoint_keys[-1][1].hex()} if self.checkpoint_keys else {})}


def summary(kind, b):
    what = b.get("member") or b.get("name") or (b["key"].hex()[:16] + "…" if b.get("key") else "")
    return ("%s %s" % (KINDS.get(kind, "kind %d" % kind), what)).strip()


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def verify_bytes(data: bytes, pin=None, now=None) -> dict:
    raws, bundle_genesis, checkpoint = read_file(data)
    # The whole file is decoded before any rule is checked (as Valise does; the document
    # does not say): a malformed entry anywhere is reported before a rule broken earlier.
    entries = []
    for i, raw in enumerate(raws):
        try:
            entries.append(decode_entry(raw))
        except ValueError as why:
            raise Refused(i, "malformed", str(why))
    if checkpoint is not None:
        r = Reader(checkpoint)
        cp = (r.u8(), r.u64(), r.take(32), r.u64())
        try:
            cp += (r.ed("checkpoint key"), r.take(64))
        except ValueError as why:
            raise Refused(cp[1], "malformed", str(why))
        if cp[0] != 1:
            raise Refused(cp[1], "malformed", "checkpoint version %d" % cp[0])
    if not entries:
        raise Refused(0, "genesis", "the file holds no entries")
    # A bundle names its genesis; it must be the first entry's hash. The document names no
    # rule; it is checked (like a pin) before the entries, as Valise does.
    if bundle_genesis is not None and bundle_genesis != entries[0]["hash"]:
        raise Refused(0, "genesis-pin", "the bundle's genesis hash is not its first entry's")
    d = Directory(pin, now)
    for e in entries:
        d.apply(e)
    out = d.state()
    if checkpoint is not None:
        out["checkpoint"] = d.check_checkpoint(checkpoint, *cp[1:])
        out["checkpoint"]["time"] = iso(out["checkpoint"]["time"])
    return out


# ---- writing: make-demo -----------------------------------------------------------------

def entry_bytes(seq, prev, ts, kind, body, signers):
    signed = b"\x01" + u64(seq) + prev + u64(ts) + bytes([kind]) + u32(len(body)) + body
    sigs = sorted((sk.verify_key.encode(), sign(sk, b"directory-entry", signed)) for sk in signers)
    return signed + bytes([len(sigs)]) + b"".join(pk + s for pk, s in sigs), blake32(signed)


def new_device():
    return SigningKey.generate(), sodium.crypto_scalarmult_base(os.urandom(32))


def enrollment(member: str, sk, tk, created):
    st = statement(1, member, [sk.verify_key.encode(), tk], created)
    return st, sign(sk, b"enrollment-request", st)


def make_demo(out: str) -> None:
    os.makedirs(out, exist_ok=True)
    now = int(time.time())
    admins = [(n, SigningKey.generate(), sodium.crypto_scalarmult_base(os.urandom(32)))
              for n in ("ana", "ben", "chloe")]
    aset = bytes([3]) + b"".join(str16(n.encode()) + sk.verify_key.encode() + x
                                 for n, sk, x in admins) + bytes([2])
    pair = lambda i: [admins[i % 3][1], admins[(i + 1) % 3][1]]   # 2 of 3, varying
    cp_sk = SigningKey.generate()
    log, hashes, prev = [], [], ZERO

    def add(kind, body):
        nonlocal prev
        raw, prev = entry_bytes(len(log), prev, now - 100 + len(log), kind, body, pair(len(log)))
        log.append(raw)
        hashes.append(prev)
    add(1, str16("Ministère de l'Intérieur".encode()) + aset + u32(2 * 86400) + u32(7 * 86400))
    dev = {}
    for member, mission, role in (("dina@quito", "Quito", "consul"),
                                  ("emil@oslo", "Embassy in Oslo", "attaché")):
        sk, tk = new_device()
        st, sig = enrollment(member, sk, tk, now - 200)
        dev[member] = sk
        add(4, st[1:] + sig + str16(mission.encode()) + str16(role.encode()))
    # Countersigned rotation: both keys sign the rotation statement.
    sk, tk = new_device()
    old = dev["dina@quito"]
    st = statement(2, "dina@quito", [old.verify_key.encode(), sk.verify_key.encode(), tk], now - 90)
    add(5, st[1:] + sign(sk, b"rotation-request", st) + b"\x01" + sign(old, b"rotation-request", st))
    # Lost device: the new key's enrollment statement; old key still named in the body.
    sk, tk = new_device()
    st, sig = enrollment("emil@oslo", sk, tk, now - 80)
    add(5, str16(b"emil@oslo") + dev["emil@oslo"].verify_key.encode() + st[-72:-8]
        + u64(now - 80) + sig + b"\x00")
    add(6, b"\x01" + str16(b"emil@oslo") + str16("device seized at the border".encode()))
    relay_sk, noise = SigningKey.generate(), sodium.crypto_scalarmult_base(os.urandom(32))
    rpk = relay_sk.verify_key.encode()
    add(2, str16(b"relay-1") + str16(b"relay.example.net:8443") + noise + rpk
        + sign(relay_sk, b"relay-public-key", noise + rpk))
    add(8, cp_sk.verify_key.encode())
    cp = b"\x01" + u64(len(log) - 1) + hashes[-1] + u64(now - 10)
    cp += cp_sk.verify_key.encode() + sign(cp_sk, b"checkpoint", cp)
    framed = u32(len(log)) + b"".join(u32(len(e)) + e for e in log)
    files = {"demo.log": b"VALISEDL\x01" + framed,
             "demo.bundle": b"VALISEOB\x01" + hashes[0] + framed + b"\x01" + cp}
    # An enrollment request for a member not in the log, and an admin public-key file.
    sk, tk = new_device()
    st, sig = enrollment("farah@dakar", sk, tk, now)
    files["member.request"] = b"VALISERQ\x01" + st + sig
    ask = SigningKey.generate()
    signed = b"\x01" + str16(b"gaspard") + ask.verify_key.encode() \
        + sodium.crypto_scalarmult_base(os.urandom(32)) + u64(now)
    files["admin.pub"] = b"VALISEAP" + signed + sign(ask, b"admin-public-key", signed)
    expected = verify_bytes(files["demo.bundle"], hashes[0], now)
    files["expected.json"] = (json.dumps(expected, indent=2, sort_keys=True) + "\n").encode()
    for name, data in files.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print("genesis %s; farah@dakar %s; admin gaspard %s" % (
        hashes[0].hex(), fingerprint(b"farah@dakar", sk.verify_key.encode()),
        fingerprint(b"gaspard", ask.verify_key.encode())))


def print_state(s: dict) -> None:
    print("organisation:  %s" % s["organisation"])
    print("genesis:       %s" % s["genesis"])
    print("head:          entry %d, %s, %s" % (s["entries"] - 1, s["headHash"], s["headTime"]))
    print("freshness:     warn after %d s, refuse after %d s" % (s["warnAfter"], s["refuseAfter"]))
    print("admins (%d of %d must sign):" % (s["threshold"], len(s["admins"])))
    for a in s["admins"]:
        print("  %-16s %s" % (a["name"], a["fingerprint"]))
    print("members (%d):" % len(s["members"]))
    for m in s["members"]:
        print("  %-22s %-18s %-16s %-8s %s  rotations %d" % (
            m["name"], m["mission"], m["role"], m["status"], m["fingerprint"], m["rotations"]))
    print("revoked keys:  %d" % s["revokedKeys"])
    for r in s["relays"]:
        print("relay:         %s %s noise %s" % (r["name"], r["address"], r["noiseKey"]))
    print("checkpoint key: %s" % s["checkpointKey"])
    if "checkpoint" in s:
        print("checkpoint:    entry %d at %s" % (s["checkpoint"]["sequence"], s["checkpoint"]["time"]))


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
    if a.cmd == "make-demo":
        make_demo(a.outdir)
        return 0
    if a.cmd == "safety-number":
        print(safety_number(fingerprint(a.name1.encode(), bytes.fromhex(a.key1)),
                            fingerprint(a.name2.encode(), bytes.fromhex(a.key2))))
        return 0
    try:
        pin = bytes.fromhex(a.genesis) if a.genesis else None
        with open(a.file, "rb") as f:
            data = f.read(MAX_FILE + 1)
        state = verify_bytes(data, pin, a.now)
    except Refused as e:
        print(e)
        return 1
    except (OSError, ValueError) as e:
        print("directory.py: %s" % e, file=sys.stderr)
        return 2
    if a.json:
        print(json.dumps(state, indent=2, sort_keys=True))
    else:
        if pin is None:
            print("NOT PINNED: the genesis was taken from the file itself")
        print_state(state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
