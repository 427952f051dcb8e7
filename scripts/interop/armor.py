#!/usr/bin/env python3
"""Independent implementation of the armored text form of Valise's public files, written
from docs/PROTOCOL.md alone ("Armor", "Requests and public-key files"). It shares no code
with the Swift implementation.

Libraries: base64 (standard library), PyNaCl (Ed25519).    pip install pynacl

    armor.py verify FILE          reads an armored or binary request, admin.pub or
                                  relay.pub, checks its signatures, prints "LABEL: comment"
    armor.py armor FILE OUT       writes the armored form of the binary FILE
    armor.py dearmor FILE OUT     writes the binary form inside the armored FILE

Exits 1 on a refused file.
"""
import base64, binascii, os, struct, sys

LABELS = {b"VALISERQ": None, b"VALISEAP": b"ADMIN PUBLIC KEY", b"VALISERP": b"RELAY PUBLIC KEY"}
REQUEST_LABELS = {1: b"ENROLLMENT REQUEST", 2: b"ROTATION REQUEST"}
MAX_ARMORED, MAX_LINE, WIDTH = 16384, 76, 64
ALPHABET = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


class Refused(Exception):
    pass


def is_armored(data: bytes) -> bool:
    return data.lstrip(b"\n\r \t").startswith(b"-----BEGIN ")


def label_of(line: bytes, prefix: bytes):
    if not (line.startswith(prefix) and line.endswith(b"-----")) or len(line) <= len(prefix) + 5:
        return None
    inner = line[len(prefix):-5]
    return inner if all(0x41 <= c <= 0x5A or c == 0x20 for c in inner) else None


def dearmor(data: bytes, labels) -> tuple:
    """(label, binary) of armored data, or (None, data) for the binary form."""
    if len(data) > MAX_ARMORED:
        raise Refused("too large")
    if not is_armored(data):
        return None, data
    lines = [l.rstrip(b"\r \t") for l in data.split(b"\n")]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    label = label_of(lines[0], b"-----BEGIN VALISE ")
    if label is None:
        raise Refused("no BEGIN VALISE line")
    if label not in labels:
        raise Refused("a %s, not a %s" % (label.decode(), " or ".join(l.decode() for l in labels)))
    if len(lines) < 2 or label_of(lines[-1], b"-----END VALISE ") is None:
        raise Refused("truncated: no END line")
    if label_of(lines[-1], b"-----END VALISE ") != label:
        raise Refused("END names another kind")
    body, in_body = b"", False
    for line in lines[1:-1]:
        if not in_body and line.startswith(b"Comment: "):
            continue
        in_body = True
        if not 1 <= len(line) <= MAX_LINE or not set(line) <= ALPHABET:
            raise Refused("a line is not base64")
        body += line
    try:
        binary = base64.b64decode(body, validate=True)
    except binascii.Error:
        raise Refused("invalid base64")
    if len(body) % 4 or base64.b64encode(binary) != body:
        raise Refused("base64 not canonical")
    return label, binary


def armor(binary: bytes, label: bytes, comment: str) -> bytes:
    text = base64.b64encode(binary)
    lines = [b"-----BEGIN VALISE " + label + b"-----", b"Comment: " + comment.encode("ascii")]
    lines += [text[i:i + WIDTH] for i in range(0, len(text), WIDTH)]
    lines.append(b"-----END VALISE " + label + b"-----")
    return b"\n".join(lines) + b"\n"


def verifies(pk: bytes, purpose: bytes, msg: bytes, sig: bytes) -> bool:
    # directory.py's Ed25519 check ("Signatures"), imported only where a signature is checked.
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from directory import verifies as directory_verifies
    return directory_verifies(pk, purpose, msg, sig)


def check_binary(binary: bytes) -> bytes:
    """Checks the binary form's signatures; returns the label its kind takes."""
    magic, rest = binary[:8], binary[8:]
    if magic not in LABELS or rest[:1] != b"\x01":
        raise Refused("not a Valise request or public-key file")
    if magic == b"VALISERP":
        if len(rest) != 1 + 32 + 32 + 64:
            raise Refused("relay.pub has the wrong length")
        noise, pk, proof = rest[1:33], rest[33:65], rest[65:]
        if not verifies(pk, b"relay-public-key", noise + pk, proof):
            raise Refused("relay.pub proof does not verify")
        return LABELS[magic]
    if magic == b"VALISEAP":
        (n,) = struct.unpack(">H", rest[1:3])
        signed, sig = rest[:1 + 2 + n + 32 + 32 + 8], rest[1 + 2 + n + 32 + 32 + 8:]
        if len(sig) != 64 or not verifies(signed[3 + n:35 + n], b"admin-public-key", signed, sig):
            raise Refused("admin.pub signature does not verify")
        return LABELS[magic]
    kind = rest[1]
    (n,) = struct.unpack(">H", rest[2:4])
    keys = 2 if kind == 2 else 1
    end = 1 + 1 + 2 + n + 32 * keys + 32 + 8
    statement, sigs = rest[1:end], rest[end:]
    if kind not in REQUEST_LABELS or len(sigs) != 64 * keys:
        raise Refused("malformed request")
    new_key = statement[3 + n + 32 * (keys - 1):3 + n + 32 * keys]
    purpose = b"enrollment-request" if kind == 1 else b"rotation-request"
    if not verifies(new_key, purpose, statement, sigs[:64]):
        raise Refused("request signature does not verify")
    if kind == 2 and not verifies(statement[3 + n:35 + n], purpose, statement, sigs[64:]):
        raise Refused("old-key signature does not verify")
    return REQUEST_LABELS[kind]


def main() -> int:
    cmd, path = sys.argv[1], sys.argv[2]
    data = open(path, "rb").read(MAX_ARMORED + 1)
    all_labels = set(REQUEST_LABELS.values()) | {LABELS[b"VALISEAP"], LABELS[b"VALISERP"]}
    try:
        if cmd == "armor":
            open(sys.argv[3], "wb").write(armor(data, check_binary(data), "made by armor.py"))
            return 0
        label, binary = dearmor(data, all_labels)
        if cmd == "dearmor":
            open(sys.argv[3], "wb").write(binary)
            return 0
        kind = check_binary(binary)
        if label is not None and label != kind:
            raise Refused("armored as %s but holds a %s" % (label.decode(), kind.decode()))
        comments = [l.rstrip(b"\r").decode("ascii", "replace") for l in data.split(b"\n") if l.startswith(b"Comment: ")]
        print("%s: %s" % (kind.decode(), comments[0][9:] if comments else "binary form"))
        return 0
    except Refused as e:
        print("armor.py: %s: %s" % (path, e), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
