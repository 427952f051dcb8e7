#!/usr/bin/env python3
"""Independent implementation of Valise's attachment blobs and kind-3 message contents,
written from docs/PROTOCOL.md alone ("Attachments" and "Message contents" under
"End-to-end") to check that the document is byte-exact. It shares no code with the Swift
implementation: the secretstream calls are PyNaCl's bindings; Padmé, the padding, the
chunking, the blob id and the contents' encoding are written out below.
    pip install pynacl

    attachment.py vectors                print vectors (JSON): Padmé sizes, blobs sealed here
                                         with a fixed key (the secretstream header is random,
                                         so each run's blobs differ; `check` accepts any),
                                         invalid blobs with the reason each must be refused
                                         for, and kind-3 contents with their bytes
    attachment.py check FILE             open every blob of FILE (vectors this script or
                                         valise wrote) and check every field; recompute the
                                         Padmé table and the contents' bytes; exit 0 only if
                                         everything agrees and every invalid blob is refused
"""
import hashlib
import json
import struct
import sys

from nacl import bindings as sodium
from nacl.exceptions import CryptoError

VERSION = 1
CHUNK = 65536
HEADER = 24
ABYTES = 17
MINIMUM_PADDED = 4096
TAG_MESSAGE, TAG_FINAL = 0, 3


def padme(length):
    """Padmé: the length rounded up so that only its top bits vary (PROTOCOL.md)."""
    if length < 2:
        return length
    e = length.bit_length() - 1
    s = e.bit_length()
    z = e - s
    mask = (1 << z) - 1
    return (length + mask) & ~mask


def padded_length(length):
    return max(MINIMUM_PADDED, padme(length + 1))


def blob_size(length):
    padded = padded_length(length)
    return 1 + HEADER + padded + ABYTES * -(-padded // CHUNK)


def b2b256(data):
    return hashlib.blake2b(data, digest_size=32).digest()


def seal(data, key):
    """The blob for `data` under `key` (a fresh header from libsodium)."""
    padded = padded_length(len(data))
    plain = data + b"\x80" + bytes(padded - len(data) - 1)
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    header = sodium.crypto_secretstream_xchacha20poly1305_init_push(state, key)
    out = bytearray([VERSION]) + header
    for offset in range(0, padded, CHUNK):
        piece = plain[offset:offset + CHUNK]
        tag = TAG_FINAL if offset + CHUNK >= padded else TAG_MESSAGE
        out += sodium.crypto_secretstream_xchacha20poly1305_push(state, piece, None, tag)
    return bytes(out)


class Refused(Exception):
    pass


def open_blob(blob, key, length, file_hash, blob_id):
    """The file, or Refused with the reason, checking everything PROTOCOL.md lists."""
    if len(blob) < 1 + HEADER or blob[0] != VERSION:
        raise Refused("version")
    if len(blob) != blob_size(length):
        raise Refused("size")
    if b2b256(blob) != blob_id:
        raise Refused("blob id")
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, blob[1:1 + HEADER], key)
    plain = bytearray()
    offset = 1 + HEADER
    while offset < len(blob):
        piece = blob[offset:offset + CHUNK + ABYTES]
        offset += len(piece)
        try:
            message, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(state, piece, None)
        except CryptoError:
            raise Refused("chunk")
        plain += message
        final = offset >= len(blob)
        if (tag == TAG_FINAL) != final or tag not in (TAG_MESSAGE, TAG_FINAL):
            raise Refused("final tag")
    padding = plain[length:]
    if not padding or padding[0] != 0x80 or any(padding[1:]):
        raise Refused("padding")
    data = bytes(plain[:length])
    if b2b256(data) != file_hash:
        raise Refused("file hash")
    return data


def contents(text, selector, attachments):
    """Kind-3 message contents (PROTOCOL.md, "Message contents")."""
    out = bytearray([1, 3]) + struct.pack(">I", len(text.encode())) + text.encode()
    out += struct.pack(">H", len(selector.encode())) + selector.encode()
    out += bytes([len(attachments)])
    for a in attachments:
        out += a["blobId"] + a["key"] + struct.pack(">Q", a["length"]) + a["hash"]
        out += struct.pack(">H", len(a["name"].encode())) + a["name"].encode()
        out += bytes([len(a["mediaType"])]) + a["mediaType"].encode("ascii")
    return bytes(out)


def file_bytes(length, seed):
    out = bytearray()
    counter = 0
    while len(out) < length:
        out += hashlib.blake2b(struct.pack(">QQ", seed, counter), digest_size=64).digest()
        counter += 1
    return bytes(out[:length])


def vectors():
    key = bytes(range(32))
    sizes = [0, 1, 2, 4094, 4095, 4096, 65535, 65536, 65537, 131071, 1 << 20, (1 << 20) + 1, 100 << 20, 1 << 30]
    padding = [{"length": n, "padded": padded_length(n), "blobSize": blob_size(n)} for n in sizes]
    blobs = []
    for seed, length in enumerate([0, 1, 4095, 4096, 65535, 65536]):
        data = file_bytes(length, seed)
        blob = seal(data, key)
        blobs.append({"length": length, "key": key.hex(), "hash": b2b256(data).hex(), "blobId": b2b256(blob).hex(),
                      "blob": blob.hex()})
    invalid = []

    def bad(reason, blob, data, file_hash=None, blob_id=None):
        invalid.append({"reason": reason, "length": len(data), "key": key.hex(), "hash": (file_hash or b2b256(data)).hex(),
                        "blobId": (blob_id or b2b256(blob)).hex(), "blob": blob.hex()})

    small = file_bytes(100, 98)  # one secretstream chunk
    one = seal(small, key)
    tampered = bytearray(one)
    tampered[1 + HEADER + 10] ^= 1
    bad("chunk", bytes(tampered), small)
    bad("blob id", bytes(tampered), small, blob_id=b2b256(one))
    bad("version", bytes([2]) + one[1:], small)
    bad("size", one[:-1], small)
    bad("file hash", one, small, file_hash=b2b256(small[:-1] + b"x"))
    data = file_bytes(70000, 99)  # two secretstream chunks
    good = seal(data, key)
    bad("size", good[:1 + HEADER + CHUNK + ABYTES], data)
    # The padding and the tags need blobs sealed wrongly on purpose.
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    header = sodium.crypto_secretstream_xchacha20poly1305_init_push(state, key)
    padded = padded_length(len(data))
    plain = data + b"\x81" + bytes(padded - len(data) - 1)
    wrong = bytearray([VERSION]) + header
    for offset in range(0, padded, CHUNK):
        tag = TAG_FINAL if offset + CHUNK >= padded else TAG_MESSAGE
        wrong += sodium.crypto_secretstream_xchacha20poly1305_push(state, plain[offset:offset + CHUNK], None, tag)
    bad("padding", bytes(wrong), data)
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    header = sodium.crypto_secretstream_xchacha20poly1305_init_push(state, key)
    plain = data + b"\x80" + bytes(padded - len(data) - 1)
    early = bytearray([VERSION]) + header
    for offset in range(0, padded, CHUNK):
        early += sodium.crypto_secretstream_xchacha20poly1305_push(state, plain[offset:offset + CHUNK], None, TAG_FINAL)
    bad("final tag", bytes(early), data)
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    header = sodium.crypto_secretstream_xchacha20poly1305_init_push(state, key)
    none = bytearray([VERSION]) + header
    for offset in range(0, padded, CHUNK):
        none += sodium.crypto_secretstream_xchacha20poly1305_push(state, plain[offset:offset + CHUNK], None, TAG_MESSAGE)
    bad("final tag", bytes(none), data)

    attachment = {"blobId": bytes(range(32, 64)), "key": bytes(range(64, 96)), "length": 123456,
                  "hash": bytes(range(96, 128)), "name": "note verbale 114–2026.pdf", "mediaType": "application/pdf"}
    second = {"blobId": bytes(32), "key": bytes([7]) * 32, "length": 0, "hash": b2b256(b""), "name": "é.txt",
              "mediaType": ""}
    cases = [("Circular: reception on 14 July.", "mission:geneva,bob@nairobi", [attachment, second]),
             ("", "", [attachment]),
             ("Annexes follow.", "", [attachment, second]),
             ("To all heads of mission.", "role:ambassador", [])]
    message_contents = []
    for text, selector, attachments in cases:
        message_contents.append({
            "text": text, "selector": selector,
            "attachments": [dict(a, blobId=a["blobId"].hex(), key=a["key"].hex(), hash=a["hash"].hex()) for a in attachments],
            "encoded": contents(text, selector, attachments).hex()})
    return {"source": "scripts/interop/attachment.py vectors", "padding": padding, "blobs": blobs, "invalid": invalid,
            "contents": message_contents}


def check(path):
    data = json.load(open(path))
    problems = []
    for row in data["padding"]:
        if (padded_length(row["length"]), blob_size(row["length"])) != (row["padded"], row["blobSize"]):
            problems.append(f"padding of {row['length']}: {row['padded']}/{row['blobSize']}, expected "
                            f"{padded_length(row['length'])}/{blob_size(row['length'])}")
    for row in data["blobs"]:
        try:
            opened = open_blob(bytes.fromhex(row["blob"]), bytes.fromhex(row["key"]), row["length"],
                               bytes.fromhex(row["hash"]), bytes.fromhex(row["blobId"]))
            if "file" in row and opened != bytes.fromhex(row["file"]):
                problems.append(f"blob of {row['length']} bytes opens to other bytes")
        except Refused as refused:
            problems.append(f"blob of {row['length']} bytes refused: {refused}")
    for row in data.get("invalid", []):
        try:
            open_blob(bytes.fromhex(row["blob"]), bytes.fromhex(row["key"]), row["length"],
                      bytes.fromhex(row["hash"]), bytes.fromhex(row["blobId"]))
            problems.append(f"an invalid blob ({row['reason']}) was opened")
        except Refused:
            pass
    for row in data.get("contents", []):
        attachments = [dict(a, blobId=bytes.fromhex(a["blobId"]), key=bytes.fromhex(a["key"]), hash=bytes.fromhex(a["hash"]))
                       for a in row["attachments"]]
        if contents(row["text"], row["selector"], attachments).hex() != row["encoded"]:
            problems.append(f"contents {row['text']!r}/{row['selector']!r} encode to other bytes")
    for problem in problems:
        print(f"attachment.py: {problem}", file=sys.stderr)
    return not problems


if __name__ == "__main__":
    if sys.argv[1:2] == ["vectors"]:
        print(json.dumps(vectors(), indent=1, ensure_ascii=False))
    elif len(sys.argv) == 3 and sys.argv[1] == "check":
        sys.exit(0 if check(sys.argv[2]) else 1)
    else:
        raise SystemExit(__doc__)
