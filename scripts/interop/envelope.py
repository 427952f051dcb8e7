#!/usr/bin/env python3
"""Independent implementation of Valise's message contents and sealed envelopes, written
from docs/PROTOCOL.md alone (sections "Message contents" and "Sealed envelopes" under
"End-to-end"; the precedence and TTL class numbers of "Store and forward") to check that
the document is byte-exact. It shares no code with the Swift implementation: sealing is
HPKE (RFC 9180) Base mode with the X-Wing KEM, written by hand in scripts/interop/hpke.py
on kyber-py (ML-KEM-768) and PyNaCl (X25519, ChaCha20-Poly1305); the padding is written out
below and cross-checked with libsodium's sodium_pad/sodium_unpad. The session messages the
envelopes carry are opaque to the envelope, and so are fixed bytes here.
    pip install kyber-py pynacl                 (Python >= 3.10)

    envelope.py vectors                 print the known-answer vectors (JSON)
    envelope.py check FILE [VALISE]     recompute them and exit 0 only if FILE is byte for
                                        byte what `vectors` prints; open every sealed
                                        envelope of FILE (and of VALISE, envelopes Valise
                                        sealed) and check each field
    envelope.py adversary FILE          the recording adversary of issue 16: with every
                                        X25519 secret of an envelope of FILE it cannot open
                                        it; with the ML-KEM-768 secret too it can

HPKE's encapsulation is made deterministic from a fixed 64-byte `eseed` (X-Wing's
EncapsulateDerand), so every byte of the vectors, sealed ones included, is a known answer.
The invalid envelopes must open to their recorded plaintext and then be refused, each for
its stated reason; the relabelled ones must not open at all.

Tests/ValiseSessionTests/Fixtures/envelope-vectors.json is the output of `vectors`;
Tests/ValiseSessionTests/Fixtures/envelope-sealed-by-valise.json holds envelopes Valise
sealed from the same inputs (see Fixtures/SOURCE.md).
"""
import hashlib
import json
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import hpke  # noqa: E402  (scripts/interop/hpke.py: X-Wing and HPKE by hand)
from nacl import bindings as sodium  # noqa: E402
from nacl.exceptions import CryptoError  # noqa: E402


def ensure(condition, what):
    if not condition:
        raise RuntimeError(what)


# ---------------------------------------------------------------------------------------
# Message contents: u8 version (1) ‖ u8 kind ‖ body
#   kind 1, text:    u32 length ‖ UTF-8 text (1 to 200,000 bytes)
#   kind 2, receipt: u8 count (1 to 64) ‖ message id (16) …

CONTENTS_VERSION = 1
KIND_TEXT, KIND_RECEIPT = 1, 2
TEXT_MAX = 200_000
RECEIPT_MAX = 64
ID_LEN = 16


class Refused(Exception):
    """The input is refused; the message says which rule."""


def encode_text(text):
    data = text.encode("utf-8")
    if not 1 <= len(data) <= TEXT_MAX:
        raise ValueError("text length out of range")
    return struct.pack(">BBI", CONTENTS_VERSION, KIND_TEXT, len(data)) + data


def encode_receipt(ids):
    if not 1 <= len(ids) <= RECEIPT_MAX or any(len(i) != ID_LEN for i in ids):
        raise ValueError("receipt: 1 to 64 ids of 16 bytes")
    return struct.pack(">BBB", CONTENTS_VERSION, KIND_RECEIPT, len(ids)) + b"".join(ids)


def decode_contents(data):
    """{"kind": "text", "text": str} or {"kind": "receipt", "ids": [bytes]}; raises Refused."""
    if len(data) < 2:
        raise Refused("contents: too short")
    if data[0] != CONTENTS_VERSION:
        raise Refused("contents: unknown version %d" % data[0])
    if data[1] == KIND_TEXT:
        if len(data) < 6:
            raise Refused("text: too short")
        (length,) = struct.unpack(">I", data[2:6])
        if not 1 <= length <= TEXT_MAX:
            raise Refused("text: length %d out of range" % length)
        if len(data) != 6 + length:
            raise Refused("text: length %d, %d bytes follow" % (length, len(data) - 6))
        try:
            text = data[6:].decode("utf-8", errors="strict")
        except UnicodeDecodeError as error:
            # The document says "UTF-8 text" but does not list invalid UTF-8 among the refusals.
            raise Refused("text: not UTF-8 (%s)" % error) from error
        return {"kind": "text", "text": text}
    if data[1] == KIND_RECEIPT:
        if len(data) < 3:
            raise Refused("receipt: too short")
        count = data[2]
        if not 1 <= count <= RECEIPT_MAX:
            raise Refused("receipt: count %d out of range" % count)
        if len(data) != 3 + ID_LEN * count:
            raise Refused("receipt: %d ids, %d bytes follow" % (count, len(data) - 3))
        return {"kind": "receipt", "ids": [data[3 + ID_LEN * i:3 + ID_LEN * (i + 1)] for i in range(count)]}
    raise Refused("contents: unknown kind %d" % data[1])


# ---------------------------------------------------------------------------------------
# Sealed envelopes.
#   contents: u8 version (3) ‖ id (16) ‖ recipient identity key (32, Ed25519) ‖
#   u8 precedence ‖ u8 TTL class ‖ sender identity key (32, Ed25519) ‖ u64 sender's
#   directory sequence ‖ sender's directory head hash (32) ‖ u64 timestamp (sender's clock,
#   Unix seconds) ‖ u8 has-checkpoint (0 or 1) ‖ [checkpoint (145), as in "Checkpoints"] ‖
#   u32 length ‖ session message
#   padded to B − 1136 bytes (B the bucket), then sealed with HPKE Base mode, suite
#   X-Wing 0x647a / HKDF-SHA256 0x0001 / ChaCha20-Poly1305 0x0003, info "valise/v2/envelope",
#   aad = the labels: u8 1 ‖ u8 name length ‖ recipient member name (UTF-8) ‖ id (16) ‖
#   u8 precedence ‖ u8 TTL class the sender asked for
#   sealed = encapsulated key (1120) ‖ AEAD ciphertext (B − 1136 + 16)

ENVELOPE_VERSION = 3
LABELS_VERSION = 1
INFO = b"valise/v2/envelope"
FIXED = 136                         # without the checkpoint
CHECKPOINT_LEN = 145                # u8 1 ‖ u64 ‖ 32 ‖ u64 ‖ key 32 ‖ signature 64
BUCKETS = (4096, 16384, 65536, 262144)
ENC_LEN, TAG_LEN = 1120, 16
SEAL_OVERHEAD = ENC_LEN + TAG_LEN   # 1136
PRECEDENCES = {0: "ROUTINE", 1: "PRIORITY", 2: "IMMEDIATE", 3: "FLASH"}
TTL_CLASSES = {0: "DEFAULT", 1: "HOUR", 2: "DAY", 3: "WEEK", 4: "MONTH"}
_LAYOUT = struct.Struct(">B16s32sBB32sQ32sQB")      # up to has-checkpoint
assert _LAYOUT.size + 4 == FIXED


def encode_contents(e):
    sm, cp = e["sessionMessage"], e["senderCheckpoint"]
    head = _LAYOUT.pack(ENVELOPE_VERSION, e["id"], e["recipient"], e["precedence"], e["ttlClass"], e["sender"],
                        e["senderSequence"], e["senderHead"], e["timestamp"], 0 if cp is None else 1)
    return head + (cp or b"") + struct.pack(">I", len(sm)) + sm


def encode_labels(mailbox, id_, precedence, ttl_class):
    name = mailbox.encode("utf-8")
    if not 1 <= len(name) <= 255 or len(id_) != ID_LEN:
        raise ValueError("labels: a name of 1 to 255 bytes and a 16-byte id")
    return struct.pack(">BB", LABELS_VERSION, len(name)) + name + id_ + struct.pack(">BB", precedence, ttl_class)


def bucket_for(session_message_length, with_checkpoint):
    """The smallest bucket B with 136 (+ 145 with a checkpoint) + length + 1 ≤ B − 1136."""
    fixed_len = FIXED + (CHECKPOINT_LEN if with_checkpoint else 0)
    for b in BUCKETS:
        if fixed_len + session_message_length + 1 <= b - SEAL_OVERHEAD:
            return b
    raise ValueError("session message too large for the largest bucket")


def pad(contents, size):
    """ISO/IEC 7816-4: 0x80, then zero bytes, to exactly `size` bytes (at least the 0x80)."""
    if len(contents) + 1 > size:
        raise ValueError("does not fit")
    out = contents + b"\x80" + b"\x00" * (size - len(contents) - 1)
    ensure(out == sodium.sodium_pad(contents, size), "padding differs from libsodium's sodium_pad")
    return out


def unpad(padded):
    body = padded.rstrip(b"\x00")
    if not body or body[-1] != 0x80:
        raise Refused("padding: no 0x80 before the trailing zero bytes")
    body = body[:-1]
    try:
        libsodium = sodium.sodium_unpad(padded, len(padded))
    except (CryptoError, ValueError):
        libsodium = None
    ensure(libsodium == body, "unpadding differs from libsodium's sodium_unpad")
    return body


def padded_contents(e):
    contents = encode_contents(e)
    size = bucket_for(len(e["sessionMessage"]), e["senderCheckpoint"] is not None) - SEAL_OVERHEAD
    return contents, pad(contents, size)


def seal(padded, envelope_key_public, labels, eseed):
    """(sealed, trace): HPKE with X-Wing, its encapsulation drawn from `eseed`."""
    enc, ciphertext, trace = hpke.seal_xwing_derand(envelope_key_public, eseed, INFO, labels, padded)
    sealed = enc + ciphertext
    ensure(len(sealed) == len(padded) + SEAL_OVERHEAD, "HPKE X-Wing overhead is not 1136 bytes")
    return sealed, trace


def open_envelope(sealed, envelope_key_seed, mailbox, expected_id, recipient, precedence, ttl_class, applied_ttl_class):
    """The opening rules of "Sealed envelopes", up to (not including) the checks against the
    session and the directory: the labels are those the relay delivered the envelope with
    (`ttl_class` the class the sender asked for), `applied_ttl_class` the one the relay
    applied. Returns (fields, padded); raises Refused."""
    if len(sealed) not in BUCKETS:
        raise Refused("size: %d is not a bucket" % len(sealed))
    labels = encode_labels(mailbox, expected_id, precedence, ttl_class)
    padded = hpke.open_xwing(envelope_key_seed, sealed[:ENC_LEN], INFO, labels, sealed[ENC_LEN:])
    if padded is None:
        raise Refused("does not open with the envelope key under these labels")
    contents = unpad(padded)
    if contents and contents[0] != ENVELOPE_VERSION:
        raise Refused("contents: version %d, only version %d is read" % (contents[0], ENVELOPE_VERSION))
    if len(contents) < FIXED:
        raise Refused("contents: shorter than 136 bytes")
    (version, id_, rcpt, prec, ttl, sender, seq, head, timestamp, has) = _LAYOUT.unpack(contents[:_LAYOUT.size])
    at = _LAYOUT.size
    if has not in (0, 1):
        raise Refused("contents: has-checkpoint is %d" % has)
    checkpoint = None
    if has:
        checkpoint = contents[at:at + CHECKPOINT_LEN]
        # Its own encoding, version 1; its signature is the recipient's business (against
        # its directory), not the envelope's.
        if len(checkpoint) < CHECKPOINT_LEN or checkpoint[0] != 1:
            raise Refused("contents: the checkpoint is short or not version 1")
        at += CHECKPOINT_LEN
    if len(contents) < at + 4:
        raise Refused("contents: no session message length")
    (length,) = struct.unpack(">I", contents[at:at + 4])
    at += 4
    if at + length != len(contents):
        raise Refused("contents: length %d, %d bytes follow" % (length, len(contents) - at))
    if prec not in PRECEDENCES:
        raise Refused("contents: unknown precedence %d" % prec)
    # "TTL class 1..4 (...; the sender always names one, DEFAULT 0 is refused)"
    if ttl not in TTL_CLASSES or ttl == 0:
        raise Refused("contents: unknown TTL class %d" % ttl)
    if id_ != expected_id:
        raise Refused("inner id differs from the id it was delivered under")
    if rcpt != recipient:
        raise Refused("for another device")
    if prec != precedence or ttl != ttl_class:
        raise Refused("precedence or TTL class differs from the labels")
    # "refuses an envelope the relay kept longer than its sender asked": classes 1..4 are
    # ordered by duration.
    if applied_ttl_class > ttl:
        raise Refused("the relay applied a longer TTL class than the sender asked")
    fields = {"id": id_, "recipient": rcpt, "precedence": prec, "ttlClass": ttl, "sender": sender,
              "senderSequence": seq, "senderHead": head, "senderCheckpoint": checkpoint, "timestamp": timestamp,
              "sessionMessage": contents[at:]}
    return fields, padded


# ---------------------------------------------------------------------------------------
# The vectors.

def fixed(what, length=32):
    return hashlib.shake_256(b"valise envelope vectors/v3/" + what).digest(length)


def message_id(n):
    return fixed(b"message id %d" % n, ID_LEN)


TEXTS = [
    "hello",
    "a",
    "Réunion à 15 h — 会議 ✓ 🇰🇪\nsecond line",
]
RECEIPTS = [[message_id(100)], [message_id(101), message_id(102), message_id(103)],
            [message_id(200 + i) for i in range(RECEIPT_MAX)]]

# Refused message contents, each with its reason.
INVALID_CONTENTS = [
    ("empty", b""),
    ("version only", b"\x01"),
    ("version 0", b"\x00\x01\x00\x00\x00\x01a"),
    ("version 2", b"\x02\x01\x00\x00\x00\x01a"),
    ("kind 0", b"\x01\x00\x00\x00\x00\x01a"),
    ("kind 3", b"\x01\x03\x00\x00\x00\x01a"),
    ("text: no length", b"\x01\x01\x00\x00"),
    ("text: length 0", b"\x01\x01\x00\x00\x00\x00"),
    ("text: length 200,001", b"\x01\x01\x00\x03\x0d\x41" + b"a" * 16),
    ("text: fewer bytes than the length", b"\x01\x01\x00\x00\x00\x05abcd"),
    ("text: a byte left over", b"\x01\x01\x00\x00\x00\x05abcdef"),
    ("receipt: no count", b"\x01\x02"),
    ("receipt: count 0", b"\x01\x02\x00"),
    ("receipt: count 65", b"\x01\x02\x41" + b"".join(message_id(300 + i) for i in range(65))),
    ("receipt: a short id", b"\x01\x02\x01" + message_id(1)[:15]),
    ("receipt: a byte left over", b"\x01\x02\x01" + message_id(1) + b"\x00"),
    ("receipt: fewer ids than the count", b"\x01\x02\x02" + message_id(1)),
]
# Not in the document's list of refusals ("Any other version or kind, a length out of range,
# or bytes left over"), but the body is "UTF-8 text": refused here (see SOURCE.md).
NOT_UTF8 = [("text: not UTF-8", b"\x01\x01\x00\x00\x00\x02\xc3\x28")]

MAILBOXES = {"alice": "alice@jakarta", "bob": "bob@nairobi"}
# A session's first message: an ML-KEM-1024 ciphertext (1,568 bytes), its header (about
# 130) and a short text. The envelope does not read session messages: these are opaque.
FIRST_MESSAGE_LEN = 1900
# The largest session message the 4,096 bucket holds with a checkpoint:
# 136 + 145 + 2678 + 1 = 2960 = 4096 − 1136, one byte of padding.
BOUNDARY_SESSION_MESSAGE = 4096 - SEAL_OVERHEAD - 1 - FIXED - CHECKPOINT_LEN


def conversation_plan():
    return [
        dict(name="alice to bob: the size of a session's first message", sender="alice", id=message_id(1),
             length=FIRST_MESSAGE_LEN, precedence=2, ttlClass=3, timestamp=1795000000),
        dict(name="bob to alice: a short reply, no checkpoint", sender="bob", id=message_id(2),
             length=120, precedence=0, ttlClass=2, timestamp=1795000017),
        dict(name="alice to bob: the largest session message for the 4,096 bucket", sender="alice",
             id=message_id(3), length=BOUNDARY_SESSION_MESSAGE, precedence=1, ttlClass=4, timestamp=1795000100),
        dict(name="alice to bob: one byte more, the 16,384 bucket", sender="alice", id=message_id(4),
             length=BOUNDARY_SESSION_MESSAGE + 1, precedence=3, ttlClass=1, timestamp=1795000101),
    ]


def make_keys():
    keys = {}
    for who in ("alice", "bob"):
        seed = fixed(who.encode() + b" seed")
        keys[who + "Seed"] = seed
        keys[who + "IdentityKey"] = sodium.crypto_sign_seed_keypair(seed)[0]
        keys[who + "EnvelopeSeed"] = fixed(who.encode() + b" envelope key seed")
        keys[who + "EnvelopeKeyPublic"] = hpke.xwing_public_key(keys[who + "EnvelopeSeed"])
    return keys


DIRECTORY = {  # each sender's view of the directory: sequence and head hash
    "alice": (12, fixed(b"directory head 12")),
    "bob": (13, fixed(b"directory head 13")),
}


def alice_checkpoint():
    """Alice's newest checkpoint ("Checkpoints"): entry 11 of her directory, signed by a
    fixed checkpoint key with purpose `checkpoint`."""
    public, secret = sodium.crypto_sign_seed_keypair(fixed(b"checkpoint key seed"))
    statement = b"\x01" + struct.pack(">Q", 11) + fixed(b"directory head 11") + struct.pack(">Q", 1794999000)
    signature = sodium.crypto_sign(b"valise/v1/checkpoint\x00" + statement, secret)[:64]
    return statement + public + signature


def envelope_inputs(keys, step):
    other = "bob" if step["sender"] == "alice" else "alice"
    sequence, head = DIRECTORY[step["sender"]]
    return {"id": step["id"], "recipient": keys[other + "IdentityKey"], "precedence": step["precedence"],
            "ttlClass": step["ttlClass"], "sender": keys[step["sender"] + "IdentityKey"],
            "senderSequence": sequence, "senderHead": head,
            "senderCheckpoint": alice_checkpoint() if step["sender"] == "alice" else None, "timestamp": step["timestamp"],
            "sessionMessage": fixed(b"session message %d" % step["id"][0], step["length"])}


def invalid_envelopes(first):
    """Plaintexts (already padded, or deliberately not) that must be refused once opened, all
    sealed to Bob's envelope key under `first`'s labels."""
    good = dict(first)
    contents = encode_contents(good)
    size = bucket_for(len(good["sessionMessage"]), good["senderCheckpoint"] is not None) - SEAL_OVERHEAD

    def with_(**changes):
        e = dict(good)
        e.update(changes)
        return pad(encode_contents(e), size)

    def raw(body):
        return pad(body, size)

    has_at = _LAYOUT.size - 1
    length_at = _LAYOUT.size + CHECKPOINT_LEN   # the first envelope carries a checkpoint
    rest = length_at + 4
    return [
        ("contents: version 2 (the X25519 sealed box's contents; no longer read)", raw(b"\x02" + contents[1:])),
        ("contents: version 4", raw(b"\x04" + contents[1:])),
        ("contents: version 0", raw(b"\x00" + contents[1:])),
        ("contents: has-checkpoint 2", raw(contents[:has_at] + b"\x02" + contents[has_at + 1:])),
        ("contents: a checkpoint of version 2", raw(contents[:has_at + 1] + b"\x02" + contents[has_at + 2:])),
        ("contents: has-checkpoint 0 before the checkpoint's bytes",
         raw(contents[:has_at] + b"\x00" + contents[has_at + 1:])),
        ("contents: precedence 4", with_(precedence=4)),
        ("contents: TTL class 5", with_(ttlClass=5)),
        ("contents: TTL class 0 (DEFAULT is for relay requests, never inside)", with_(ttlClass=0)),
        ("contents: a TTL class other than the labels' (sealed by a lying sender)", with_(ttlClass=first["ttlClass"] + 1)),
        ("contents: another id than the labels'", with_(id=message_id(98))),
        ("contents: for another device", with_(recipient=first["sender"])),
        ("contents: the length says one byte more than follows",
         raw(contents[:length_at] + struct.pack(">I", len(good["sessionMessage"]) + 1) + contents[rest:])),
        ("contents: a byte left over after the session message",
         raw(contents[:length_at] + struct.pack(">I", len(good["sessionMessage"]) - 1) + contents[rest:])),
        ("contents: shorter than 136 bytes", raw(contents[:FIXED - 1])),
        ("padding: zero bytes without 0x80", contents + b"\x00" * (size - len(contents))),
        ("padding: 0x80 followed by a non-zero byte", contents + b"\x80" + b"\x00" * (size - len(contents) - 2) + b"\x01"),
        ("padding: none (contents fill the bucket)", contents + b"\x41" * (size - len(contents))),
    ]


def relabellings(first):
    """Labels a relay might put on the first envelope instead of its own: none opens it."""
    return [
        ("another recipient's mailbox", dict(mailbox="carol@jakarta")),
        ("the mailbox in other letters", dict(mailbox="Bob@nairobi")),
        ("another id", dict(id=message_id(99))),
        ("a higher precedence", dict(precedence=3)),
        ("a lower precedence", dict(precedence=0)),
        ("a longer TTL class asked", dict(ttlClass=first["ttlClass"] + 1)),
        ("a shorter TTL class asked", dict(ttlClass=first["ttlClass"] - 1)),
    ]


def hexed(value):
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        return [hexed(v) for v in value]
    if isinstance(value, dict):
        return {k: hexed(v) for k, v in value.items()}
    return value


SOURCE = ("scripts/interop/envelope.py vectors: an independent implementation of message contents and "
          "sealed envelopes written from docs/PROTOCOL.md (End-to-end: Message contents, Sealed "
          "envelopes) alone; HPKE Base mode with X-Wing written by hand in scripts/interop/hpke.py "
          "(RFC 9180, draft-connolly-cfrg-xwing-kem-06) on kyber-py (ML-KEM-768) and PyNaCl (X25519, "
          "ChaCha20-Poly1305, sodium_pad). Every input is SHAKE256 of a fixed label; each encapsulation "
          "is X-Wing's EncapsulateDerand from the listed eseed, so every byte is a known answer. "
          "Session messages are opaque to the envelope: fixed bytes of realistic lengths.")
SEALED = "sealed"


def build():
    """The vectors as a JSON-ready dict (every byte deterministic)."""
    keys = make_keys()
    contents = [{"kind": "text", "text": t, "encoded": encode_text(t)} for t in TEXTS]
    contents += [{"kind": "receipt", "ids": ids, "encoded": encode_receipt(ids)} for ids in RECEIPTS]
    for c in contents:
        decoded = decode_contents(c["encoded"])
        ensure(decoded == {k: c[k] for k in decoded}, "contents do not decode to themselves")
    for why, data in INVALID_CONTENTS + NOT_UTF8:
        try:
            decode_contents(data)
        except Refused:
            continue
        raise RuntimeError("contents accepted: %s" % why)
    for length, ok in ((TEXT_MAX, True), (TEXT_MAX + 1, False)):
        data = struct.pack(">BBI", 1, 1, length) + b"z" * length
        try:
            decode_contents(data)
            ensure(ok, "a text of %d bytes accepted" % length)
        except Refused:
            ensure(not ok, "a text of %d bytes refused" % length)

    plan = conversation_plan()
    envelopes = []
    for number, step in enumerate(plan, 1):
        e = envelope_inputs(keys, step)
        body, padded = padded_contents(e)
        to = "bob" if step["sender"] == "alice" else "alice"
        labels = encode_labels(MAILBOXES[to], e["id"], e["precedence"], e["ttlClass"])
        eseed = fixed(b"eseed %d" % number, 64)
        sealed, trace = seal(padded, keys[to + "EnvelopeKeyPublic"], labels, eseed)
        fields, opened = open_envelope(sealed, keys[to + "EnvelopeSeed"], MAILBOXES[to], e["id"], e["recipient"],
                                       e["precedence"], e["ttlClass"], e["ttlClass"])
        ensure(fields == e and opened == padded, "%s: does not open to its fields" % step["name"])
        entry = {"name": step["name"], "from": step["sender"], "to": to, "mailbox": MAILBOXES[to]}
        entry.update(e)
        entry.update({"contents": body, "bucket": len(sealed), "padded": padded, "labels": labels, "eseed": eseed})
        entry.update(trace)
        entry[SEALED] = sealed
        envelopes.append(entry)
    first = envelopes[0]
    self_test_refusals(keys, first)

    invalid = []
    for number, (why, padded) in enumerate(invalid_envelopes(envelope_inputs(keys, plan[0])), 1):
        eseed = fixed(b"invalid eseed %d" % number, 64)
        sealed, _ = seal(padded, keys["bobEnvelopeKeyPublic"], first["labels"], eseed)
        try:
            open_envelope(sealed, keys["bobEnvelopeSeed"], first["mailbox"], first["id"], first["recipient"],
                          first["precedence"], first["ttlClass"], first["ttlClass"])
        except Refused:
            invalid.append({"why": why, "padded": padded, "eseed": eseed, SEALED: sealed})
            continue
        raise RuntimeError("invalid envelope accepted: %s" % why)

    relabelled = []
    for why, change in relabellings(first):
        labels = {"mailbox": first["mailbox"], "id": first["id"], "precedence": first["precedence"],
                  "ttlClass": first["ttlClass"]}
        labels.update(change)
        try:
            open_envelope(first[SEALED], keys["bobEnvelopeSeed"], labels["mailbox"], labels["id"], first["recipient"],
                          labels["precedence"], labels["ttlClass"], min(labels["ttlClass"], first["ttlClass"]))
        except Refused:
            relabelled.append(dict(why=why, **labels))
            continue
        raise RuntimeError("a relabelled envelope opened: %s" % why)

    return {
        "source": SOURCE,
        "suite": {"mode": 0, "kem_id": hpke.KEM_XWING, "kdf_id": hpke.KDF_HKDF_SHA256,
                  "aead_id": hpke.AEAD_CHACHA20POLY1305, "info": INFO.decode("ascii")},
        "keys": hexed(keys),
        "messageContents": hexed(contents),
        "invalidMessageContents": [{"why": why, "encoded": data.hex()}
                                   for why, data in INVALID_CONTENTS + NOT_UTF8],
        "envelopes": hexed(envelopes),
        "invalidEnvelopes": hexed(invalid),
        "invalidEnvelopesTo": {"recipient": "bob", "mailbox": first["mailbox"], "id": first["id"].hex(),
                               "precedence": first["precedence"], "ttlClass": first["ttlClass"]},
        "relabelledEnvelopes": hexed(relabelled),
        "relabelledEnvelope": first["name"],
    }


def self_test_refusals(keys, entry):
    """The opening rules that need no special plaintext, on a good envelope (Python's reader)."""
    sealed, key = entry[SEALED], keys["bobEnvelopeSeed"]
    args = dict(mailbox=entry["mailbox"], expected_id=entry["id"], recipient=entry["recipient"],
                precedence=entry["precedence"], ttl_class=entry["ttlClass"], applied_ttl_class=entry["ttlClass"])

    def refused(data=sealed, seed=key, **changes):
        a = dict(args)
        a.update(changes)
        try:
            open_envelope(data, seed, **a)
        except Refused:
            return True
        return False

    checks = [refused(sealed[:-1]), refused(sealed + b"\x00"), refused(seed=keys["aliceEnvelopeSeed"]),
              refused(recipient=keys["aliceIdentityKey"]),
              refused(applied_ttl_class=entry["ttlClass"] + 1),         # kept longer than asked
              not refused(applied_ttl_class=entry["ttlClass"] - 1)]     # a relay may shorten a TTL
    for at in (0, ENC_LEN - 1, ENC_LEN, len(sealed) // 2, len(sealed) - 1):
        flipped = bytearray(sealed)
        flipped[at] ^= 1
        checks.append(refused(bytes(flipped)))
    ensure(all(checks), "Python's reader accepts an envelope it must refuse: %s" % checks)


# ---------------------------------------------------------------------------------------
# The recording adversary (issue 16): it holds every X25519 secret of an envelope, the
# recipient's (from its X-Wing seed) and the sender's ephemeral one (from the eseed), and
# the sealed bytes. swift-crypto hides HPKE's ephemeral keys, so this runs here.

def adversary(doc):
    """Returns how many envelopes it tried: for each, what the X25519 secrets give does not
    open it, and with the ML-KEM-768 decapsulation key too it does (the positive control)."""
    keys = {k: bytes.fromhex(v) for k, v in doc["keys"].items()}
    count = 0
    for e in doc["envelopes"]:
        sealed, eseed, padded = (bytes.fromhex(e[k]) for k in (SEALED, "eseed", "padded"))
        labels = bytes.fromhex(e["labels"])
        seed = keys[e["to"] + "EnvelopeSeed"]
        sk_m, sk_x, _, pk_x = hpke.xwing_expand(seed)
        ct_m, ct_x, ciphertext = sealed[:1088], sealed[1088:ENC_LEN], sealed[ENC_LEN:]
        # What breaking X25519 gives: both X25519 secrets, so the X25519 shared secret.
        ek_x = eseed[32:64]
        ensure(hpke.x25519_base(ek_x) == ct_x, "the eseed's X25519 half is not the envelope's")
        ss_x = hpke.x25519(sk_x, ct_x)
        ensure(ss_x == hpke.x25519(ek_x, pk_x), "the two X25519 computations disagree")

        def opens(shared_secret):
            key, nonce = hpke.key_schedule_base(hpke.XWING_SUITE, shared_secret, INFO)
            return hpke.aead_open(key, nonce, labels, ciphertext)

        # Without ML-KEM's share, every guess at it (and X25519's secret used alone) fails.
        guesses = [bytes(32), ss_x, hashlib.sha3_256(ct_m).digest(), hashlib.sha3_256(ss_x).digest()]
        candidates = [ss_x] + [hpke.xwing_combiner(g, ss_x, ct_x, pk_x) for g in guesses]
        ensure(all(opens(c) is None for c in candidates), "%s: opened with X25519 secrets alone" % e["name"])
        # The positive control: with the ML-KEM-768 decapsulation key, ML-KEM's share too.
        from kyber_py.ml_kem import ML_KEM_768
        ss_m = ML_KEM_768.decaps(sk_m, ct_m)
        ensure(opens(hpke.xwing_combiner(ss_m, ss_x, ct_x, pk_x)) == padded,
               "%s: did not open with every secret" % e["name"])
        count += 1
    return count


# ---------------------------------------------------------------------------------------

def check(path, valise_path=None):
    with open(path, "rb") as f:
        given = f.read()
    try:
        expected = build()
    except Exception as error:  # a failed self-check or a package error: not a match either
        print("envelope.py: recomputing the vectors failed: %r" % error, file=sys.stderr)
        return 1
    text = (json.dumps(expected, indent=2, ensure_ascii=False) + "\n").encode()
    if given != text:
        print("envelope.py: %s differs from the recomputed vectors" % path, file=sys.stderr)
        try:
            doc = json.loads(given)
            for key in sorted(set(doc) | set(expected)):
                if doc.get(key) != hexed(expected.get(key)):
                    print("  %s" % key, file=sys.stderr)
        except ValueError:
            pass
        return 1
    print("envelope.py: %s matches (%d contents, %d envelopes opened, %d refused once opened, %d relabellings refused)"
          % (path, len(expected["messageContents"]), len(expected["envelopes"]), len(expected["invalidEnvelopes"]),
             len(expected["relabelledEnvelopes"])))
    if valise_path is not None:
        return check_valise(valise_path, expected)
    return 0


def check_valise(path, expected):
    """Envelopes Valise sealed from the inputs of the vectors' envelopes: each must open with
    the recipient's envelope key, under the same labels, to the same padded contents and fields."""
    keys = {k: bytes.fromhex(v) for k, v in expected["keys"].items()}
    by_name = {e["name"]: e for e in expected["envelopes"]}
    try:
        with open(path) as f:
            listed = json.load(f)["envelopes"]
        count = 0
        for item in listed:
            e = by_name[item["name"]]
            sealed = bytes.fromhex(item[SEALED])
            if sealed == bytes.fromhex(e[SEALED]):
                raise Refused("%s: the same bytes as the vectors' (not sealed afresh by Valise)" % item["name"])
            fields, padded = open_envelope(
                sealed, keys[e["to"] + "EnvelopeSeed"], e["mailbox"], bytes.fromhex(e["id"]), bytes.fromhex(e["recipient"]),
                e["precedence"], e["ttlClass"], e["ttlClass"])
            if hexed(fields) != {k: e[k] for k in fields}:
                raise Refused("%s: fields differ" % item["name"])
            if padded.hex() != e["padded"]:
                raise Refused("%s: padded contents differ" % item["name"])
            count += 1
        if count != len(by_name):
            raise Refused("%d of %d envelopes" % (count, len(by_name)))
    except (Refused, KeyError, ValueError, TypeError) as error:
        print("envelope.py: %s: %s" % (path, error), file=sys.stderr)
        return 1
    print("envelope.py: %s: %d envelopes sealed by Valise open to the expected fields and padding" % (path, count))
    return 0


def main(argv):
    if argv == ["vectors"]:
        sys.stdout.write(json.dumps(build(), indent=2, ensure_ascii=False) + "\n")
        return 0
    if len(argv) in (2, 3) and argv[0] == "check":
        return check(*argv[1:])
    if len(argv) == 2 and argv[0] == "adversary":
        with open(argv[1]) as f:
            doc = json.load(f)
        try:
            count = adversary(doc)
        except RuntimeError as error:
            print("envelope.py: adversary: FAILED: %s" % error, file=sys.stderr)
            return 1
        print("envelope.py: adversary: %d envelopes stay sealed to every X25519 secret, and open with the ML-KEM-768 key too" % count)
        return 0
    print("usage: envelope.py vectors | envelope.py check FILE [VALISE-SEALED-FILE] | envelope.py adversary FILE",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
