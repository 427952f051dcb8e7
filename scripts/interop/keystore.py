#!/usr/bin/env python3
"""Independent implementation of the Valise keystore (device and device key backup
contents), written from docs/PROTOCOL.md alone (sections Conventions, Fingerprints,
Keystore) to check that the document is byte-exact. It shares no code with the Swift implementation.

Libraries: argon2-cffi (Argon2id), PyNaCl (XChaCha20-Poly1305, Ed25519, X25519), hashlib.
    pip install argon2-cffi pynacl

    keystore.py read FILE --passphrase-file P [--json]
    keystore.py read-backup FILE --passphrase-file P
    keystore.py write FILE --name NAME --passphrase-file P --seed HEX --transport HEX
                --created SECONDS [--profile standard|insecure-test] [--salt HEX --nonce HEX]
    keystore.py fingerprint --name NAME --key HEX

Exit codes of `read`: 0 ok, 2 wrong passphrase, 3 damaged (truncated / corrupted /
checksum), 1 anything else (not a keystore, unsupported, out of range, bad usage).
"""
import argparse, hashlib, json, os, re, struct, sys, tempfile

from argon2.low_level import Type, hash_secret_raw
from nacl import bindings as sodium
from nacl.exceptions import CryptoError

MAGIC = b"VALISEKS"
FORMAT_VERSION = 1
CONTENTS = {1: "device", 2: "admin", 3: "relay", 4: "checkpoint", 5: "device key backup", 6: "admin key backup"}
KDF_ARGON2ID = 1
PROFILES = {0: ("standard", 8, 262144), 1: ("insecure-test", 1, 8)}  # byte: (name, t, m KiB)
HEADER_LEN = 64   # offsets 0..64 (half-open): the AEAD's associated data
TAG_LEN = 16
SUM_LEN = 32      # BLAKE2b-32 checksum trailer
MAX_FILE = 65536
MAX_PASSPHRASE = 1024
NAME_PART = re.compile(rb"[a-z0-9][a-z0-9._-]{0,63}\Z")


class KeystoreError(Exception):
    """A refused check: the message names it; code is the exit status."""


def fail(check, code=1):
    raise KeystoreError(check, code)


def valid_member(name: bytes) -> bool:
    # person@mission: exactly one '@', each part 1..64 bytes of a-z 0-9 . _ -, first a-z0-9.
    parts = name.split(b"@")
    return len(parts) == 2 and all(NAME_PART.match(p) for p in parts)


def fingerprint(name: bytes, key: bytes) -> str:
    if len(key) != 32:
        fail("fingerprint: key must be 32 bytes")
    d = hashlib.sha512(b"valise/v1/fingerprint" + b"\x00"
                       + struct.pack(">H", len(name)) + name + key).digest()
    for _ in range(5199):                      # 5200 SHA-512 in all
        d = hashlib.sha512(d + key).digest()
    # Six groups (i = 0..5 inclusive) from the first 30 bytes, each a 40-bit big-endian int.
    return " ".join("%05d" % (int.from_bytes(d[5 * i:5 * i + 5], "big") % 100000)
                    for i in range(6))


def iso_utc(secs: int) -> str:
    # created-at is a full u64, beyond datetime's range: civil-from-days (proleptic Gregorian).
    days, rem = divmod(secs, 86400)
    era, doe = divmod(days + 719468, 146097)
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d, m = doy - (153 * mp + 2) // 5 + 1, mp + 3 if mp < 10 else mp - 9
    y = yoe + era * 400 + (m <= 2)
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (y, m, d, rem // 3600, rem // 60 % 60, rem % 60)


def read_passphrase(path: str) -> bytes:
    # The bytes before the first "\n" (all of them if none), minus one trailing "\r".
    # Bytes are used as they are (no normalisation, no UTF-8 re-encoding).
    with open(path, "rb") as f:
        data = f.read(MAX_PASSPHRASE + 2 + 1)
    line = data.partition(b"\n")[0]
    if line.endswith(b"\r"):
        line = line[:-1]
    if not line:
        fail("empty passphrase")
    if len(line) > MAX_PASSPHRASE:
        fail("passphrase longer than 1024 bytes")
    return line


def kdf(passphrase: bytes, salt: bytes, t: int, m: int) -> bytes:
    # Argon2id v1.3 (0x13 = 19), parallelism 1, 32-byte output, no secret, no AD.
    return hash_secret_raw(passphrase, salt, time_cost=t, memory_cost=m, parallelism=1,
                           hash_len=32, type=Type.ID, version=19)


def open_container(data: bytes, passphrase: bytes, expected_contents: int = 1):
    """Every check of PROTOCOL.md 'Keystore / Container', in the document's order."""
    if len(data) > MAX_FILE:
        fail("file size: larger than 65536 bytes", 3)
    # A file shorter than 8 bytes that is a prefix of the magic is reported as truncated
    # by the "header complete" check below rather than as a bad magic (spec is silent).
    if data[:8] != MAGIC[:len(data[:8])]:
        fail("magic: not a Valise keystore (no VALISEKS)")
    if len(data) > 8 and data[8] != FORMAT_VERSION:
        fail("version: unsupported format version %d" % data[8])
    if len(data) < HEADER_LEN:
        fail("header complete: truncated (file shorter than the 64-byte header)", 3)
    contents, alg, profile = data[9], data[10], data[11]
    t, m = struct.unpack_from(">II", data, 12)
    salt, nonce = data[20:36], data[36:60]
    (n,) = struct.unpack_from(">I", data, 60)
    if n < TAG_LEN or HEADER_LEN + n + SUM_LEN > MAX_FILE:
        fail("ciphertext length n out of range (n=%d)" % n, 3)
    total = HEADER_LEN + n + SUM_LEN
    if len(data) < total:
        fail("file length: truncated (%d of %d bytes)" % (len(data), total), 3)
    if len(data) > total:
        fail("file length: corrupted (%d bytes after the checksum)" % (len(data) - total), 3)
    if hashlib.blake2b(data[:HEADER_LEN + n], digest_size=32).digest() != data[HEADER_LEN + n:]:
        fail("checksum: BLAKE2b-32 mismatch, file is damaged", 3)
    if contents not in CONTENTS:
        fail("contents: unknown contents type %d" % contents)
    if alg != KDF_ARGON2ID:
        fail("KDF algorithm: unknown algorithm %d" % alg)
    if profile not in PROFILES:
        fail("KDF profile: unknown profile %d" % profile)
    # The profile byte is a label only: t and m are taken from the file, within these bounds.
    if not (1 <= t <= 256) or not (8 <= m <= 4194304):
        fail("KDF parameters out of range (t=%d, m=%d KiB)" % (t, m))
    if contents != expected_contents:
        fail("contents type: %s keystore, expected %s"
             % (CONTENTS[contents], CONTENTS[expected_contents]))
    key = kdf(passphrase, salt, t, m)
    try:  # associated data = the whole 64-byte header, including n
        payload = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
            data[HEADER_LEN:HEADER_LEN + n], data[:HEADER_LEN], nonce, key)
    except CryptoError:
        # The checksum matched, so by the spec's convention this is a wrong passphrase; a
        # header/ciphertext edited with a recomputed checksum lands here too, by design.
        fail("AEAD: wrong passphrase", 2)
    return payload, {"profile": PROFILES[profile][0], "t": t, "m": m}


def parse_device_payload(p: bytes) -> dict:
    # Version 1: name, created, current keys. Version 2 adds a pending flag (and keys) and
    # a count of retired keys; version 3 adds the 32-byte store key. "Nothing follows".
    if len(p) < 3 or p[0] not in (1, 2, 3):
        fail("device payload: unknown payload version")
    (k,) = struct.unpack_from(">H", p, 1)
    name = p[3:3 + k]
    if len(p) < 3 + k + 8 + 64:
        fail("device payload: truncated")
    if not valid_member(name):
        fail("device payload: invalid member name")
    (created,) = struct.unpack_from(">Q", p, 3 + k)
    at = 11 + k
    seed, x_priv = p[at:at + 32], p[at + 32:at + 64]
    at += 64
    pending, retired = None, []
    if p[0] >= 2:
        if at >= len(p) or p[at] not in (0, 1):
            fail("device payload: invalid pending flag")
        if p[at] == 1:
            pending = p[at + 1:at + 73]
            at += 72
        at += 1
        if at >= len(p) or p[at] > 16:
            fail("device payload: invalid retired count")
        count = p[at]
        at += 1
        for _ in range(count):
            retired.append(p[at:at + 72])
            at += 72
    if p[0] == 3:
        at += 32
    if at != len(p):
        fail("device payload: wrong length")
    return {"name": name, "created": created, "seed": seed, "x_priv": x_priv,
            "pending": pending is not None, "retired": len(retired)}


def parse_backup_payload(p: bytes) -> dict:
    # "Device key backup payload": version 1, name, exported at, the two keys; nothing else.
    if len(p) < 3 or p[0] != 1:
        fail("backup payload: unknown payload version")
    (k,) = struct.unpack_from(">H", p, 1)
    name = p[3:3 + k]
    if len(p) != 3 + k + 8 + 64:
        fail("backup payload: wrong length")
    if not valid_member(name):
        fail("backup payload: invalid member name")
    (exported,) = struct.unpack_from(">Q", p, 3 + k)
    return {"name": name, "exported": exported, "seed": p[11 + k:43 + k], "x_priv": p[43 + k:75 + k]}


def device_payload(name: bytes, created: int, seed: bytes, x_priv: bytes) -> bytes:
    # Version 3 with nothing pending, nothing retired, and a store key made from the seed
    # (any 32 bytes will do; deriving them keeps the output reproducible).
    store_key = hashlib.blake2b(b"interop store key" + seed, digest_size=32).digest()
    return (b"\x03" + struct.pack(">H", len(name)) + name + struct.pack(">Q", created)
            + seed + x_priv + b"\x00" + b"\x00" + store_key)


def seal_container(payload: bytes, passphrase: bytes, profile: int, salt: bytes,
                   nonce: bytes, contents: int = 1) -> bytes:
    _, t, m = PROFILES[profile]
    n = len(payload) + TAG_LEN   # known before encrypting, so n is inside the AD
    header = (MAGIC + bytes([FORMAT_VERSION, contents, KDF_ARGON2ID, profile])
              + struct.pack(">II", t, m) + salt + nonce + struct.pack(">I", n))
    assert len(header) == HEADER_LEN
    ct = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
        payload, header, nonce, kdf(passphrase, salt, t, m))
    body = header + ct
    return body + hashlib.blake2b(body, digest_size=32).digest()


def atomic_write(path: str, data: bytes, check) -> None:
    # Temporary file in the same directory (0600), fsync, read back and decrypt, rename,
    # fsync of the directory.
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".keystore-", dir=directory)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        with open(tmp, "rb") as f:
            check(f.read())
        os.rename(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    dfd = os.open(directory, os.O_RDONLY)
    os.fsync(dfd)
    os.close(dfd)


def public_keys(seed: bytes, x_priv: bytes):
    ed_pk, _ = sodium.crypto_sign_seed_keypair(seed)
    x_pk = sodium.crypto_scalarmult_base(x_priv)   # clamps the scalar, as X25519 does
    return ed_pk, x_pk


def hexarg(s: str, size: int, what: str) -> bytes:
    try:
        b = bytes.fromhex(s)
    except ValueError:
        b = None
    if b is None or len(b) != size:
        fail("%s must be %d bytes of hex" % (what, size))
    return b


def cmd_read(a) -> None:
    with open(a.file, "rb") as f:
        data = f.read(MAX_FILE + 1)   # enough to tell "larger than 65536"
    payload, kdfinfo = open_container(data, read_passphrase(a.passphrase_file))
    dev = parse_device_payload(payload)
    ed_pk, x_pk = public_keys(dev["seed"], dev["x_priv"])
    out = {"member": dev["name"].decode(), "fingerprint": fingerprint(dev["name"], ed_pk),
           "identityKey": ed_pk.hex(), "transportKey": x_pk.hex(),
           "createdAt": iso_utc(dev["created"]),
           "createdAtSeconds": dev["created"], "kdfProfile": kdfinfo["profile"],
           "kdfIterations": kdfinfo["t"], "kdfMemoryKiB": kdfinfo["m"]}
    if a.json:
        print(json.dumps(out, indent=2, sort_keys=True))
    else:
        for k, v in out.items():
            print("%-17s %s" % (k + ":", v))


def cmd_read_backup(a) -> None:
    with open(a.file, "rb") as f:
        data = f.read(MAX_FILE + 1)
    payload, _ = open_container(data, read_passphrase(a.passphrase_file), expected_contents=5)
    b = parse_backup_payload(payload)
    ed_pk, x_pk = public_keys(b["seed"], b["x_priv"])
    print(json.dumps({"member": b["name"].decode(), "fingerprint": fingerprint(b["name"], ed_pk),
                      "identityKey": ed_pk.hex(), "transportKey": x_pk.hex(),
                      "exportedAtSeconds": b["exported"], "payloadBytes": len(payload)},
                     indent=2, sort_keys=True))


def cmd_write(a) -> None:
    name = a.name.encode()
    if not valid_member(name):
        fail("invalid member name (person@mission, a-z 0-9 . _ -)")
    seed = hexarg(a.seed, 32, "--seed")
    x_priv = hexarg(a.transport, 32, "--transport")
    if not 0 <= a.created < 2 ** 64:
        fail("--created must fit a u64")
    salt = hexarg(a.salt, 16, "--salt") if a.salt else os.urandom(16)
    nonce = hexarg(a.nonce, 24, "--nonce") if a.nonce else os.urandom(24)
    passphrase = read_passphrase(a.passphrase_file)
    profile = {"standard": 0, "insecure-test": 1}[a.profile]
    payload = device_payload(name, a.created, seed, x_priv)
    data = seal_container(payload, passphrase, profile, salt, nonce)

    def check(back: bytes) -> None:
        if open_container(back, passphrase)[0] != payload:
            fail("read-back: decrypted payload differs")
    atomic_write(a.file, data, check)
    ed_pk, x_pk = public_keys(seed, x_priv)
    print("wrote %s (%d bytes): %s %s" % (a.file, len(data), a.name, fingerprint(name, ed_pk)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("read")
    r.add_argument("file"); r.add_argument("--passphrase-file", required=True)
    r.add_argument("--json", action="store_true")
    rb = sub.add_parser("read-backup")
    rb.add_argument("file"); rb.add_argument("--passphrase-file", required=True)
    w = sub.add_parser("write")
    w.add_argument("file")
    for opt in ("--name", "--passphrase-file", "--seed", "--transport"):
        w.add_argument(opt, required=True)
    w.add_argument("--created", type=int, required=True)
    w.add_argument("--profile", choices=["standard", "insecure-test"], default="standard")
    w.add_argument("--salt"); w.add_argument("--nonce")
    f = sub.add_parser("fingerprint")
    f.add_argument("--name", required=True); f.add_argument("--key", required=True)
    a = ap.parse_args()
    try:
        if a.cmd == "read":
            cmd_read(a)
        elif a.cmd == "read-backup":
            cmd_read_backup(a)
        elif a.cmd == "write":
            cmd_write(a)
        else:
            print(fingerprint(a.name.encode(), hexarg(a.key, 32, "--key")))
    except KeystoreError as e:
        print("keystore.py: %s" % e.args[0], file=sys.stderr)
        return e.args[1]
    except OSError as e:
        print("keystore.py: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
