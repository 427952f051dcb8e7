#!/usr/bin/env python3
"""Independent implementation of Valise's message contents and sealed envelopes, written
from docs/PROTOCOL.md alone (sections "Message contents" and "Sealed envelopes" under
"End-to-end"; the precedence and TTL class numbers of "Store and forward") to check that
the document is byte-exact. It shares no code with the Swift implementation: sealing is
PyNaCl's SealedBox (libsodium's crypto_box_seal); the padding is written out below and
cross-checked with libsodium's sodium_pad/sodium_unpad. The session messages the envelopes
carry are made by scripts/interop/session.py (the PyPI x3dh and doubleratchet packages).
    pip install x3dh==1.3.0 doubleratchet==1.3.0 pynacl      (Python >= 3.10)

    envelope.py vectors                 print the known-answer vectors (JSON)
    envelope.py check FILE [VALISE]     recompute them and exit 0 only if FILE is byte for
                                        byte what `vectors` prints, except the "sealed"
                                        fields; open every sealed envelope of FILE (and of
                                        VALISE, envelopes Valise sealed) and check each field

crypto_box_seal draws a fresh ephemeral key, so sealed bytes cannot be known answers: every
"sealed" field is instead opened with the recipient's envelope key and must give exactly the
recorded padded contents ("padded"), and every other byte (keys, ids, message contents,
session messages, contents, padding) must be reproduced. The invalid envelopes must open to
their recorded plaintext and then be refused, each for its stated reason.

Tests/ValiseSessionTests/Fixtures/envelope-vectors.json is the output of `vectors`;
Tests/ValiseSessionTests/Fixtures/envelope-sealed-by-valise.json holds envelopes Valise
sealed from the same inputs (see Fixtures/SOURCE.md).
"""
import asyncio
import hashlib
import json
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import session  # noqa: E402  (scripts/interop/session.py: X3DH and the Double Ratchet)
from nacl import bindings as sodium  # noqa: E402
from nacl.exceptions import CryptoError  # noqa: E402
from nacl.public import PrivateKey, PublicKey, SealedBox  # noqa: E402

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
#   u8 version (2) ‖ id (16) ‖ recipient identity key (32, Ed25519) ‖ u8 precedence ‖
#   u8 TTL class ‖ sender identity key (32, Ed25519) ‖ u64 sender's directory sequence ‖
#   sender's directory head hash (32) ‖ u64 timestamp (sender's clock, Unix seconds) ‖
#   u8 has-checkpoint (0 or 1) ‖ [checkpoint (145), as in "Checkpoints"] ‖
#   u32 length ‖ session message

ENVELOPE_VERSION = 2
FIXED = 136                         # without the checkpoint
CHECKPOINT_LEN = 145                # u8 1 ‖ u64 ‖ 32 ‖ u64 ‖ key 32 ‖ signature 64
BUCKETS = (1024, 4096, 16384, 65536, 262144)
SEAL_OVERHEAD = 48                  # epk (32) ‖ tag (16)
PRECEDENCES = {0: "ROUTINE", 1: "PRIORITY", 2: "IMMEDIATE", 3: "FLASH"}
TTL_CLASSES = {0: "DEFAULT", 1: "HOUR", 2: "DAY", 3: "WEEK", 4: "MONTH"}
_LAYOUT = struct.Struct(">B16s32sBB32sQ32sQB")      # up to has-checkpoint
assert _LAYOUT.size + 4 == FIXED


def encode_contents(e):
    sm, cp = e["sessionMessage"], e["senderCheckpoint"]
    head = _LAYOUT.pack(ENVELOPE_VERSION, e["id"], e["recipient"], e["precedence"], e["ttlClass"], e["sender"],
                        e["senderSequence"], e["senderHead"], e["timestamp"], 0 if cp is None else 1)
    return head + (cp or b"") + struct.pack(">I", len(sm)) + sm


def bucket_for(session_message_length, with_checkpoint):
    """The smallest bucket B with 136 (+ 145 with a checkpoint) + length + 1 ≤ B − 48."""
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
    session.ensure(out == sodium.sodium_pad(contents, size), "padding differs from libsodium's sodium_pad")
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
    session.ensure(libsodium == body, "unpadding differs from libsodium's sodium_unpad")
    return body


def padded_contents(e):
    contents = encode_contents(e)
    size = bucket_for(len(e["sessionMessage"]), e["senderCheckpoint"] is not None) - SEAL_OVERHEAD
    return contents, pad(contents, size)


def seal(padded, envelope_key_public):
    sealed = SealedBox(PublicKey(envelope_key_public)).encrypt(padded)
    session.ensure(len(sealed) == len(padded) + SEAL_OVERHEAD, "crypto_box_seal overhead is not 48 bytes")
    return sealed


def open_by_hand(sealed, envelope_key_private):
    """crypto_box_seal as the document spells it out: epk (32) ‖ tag (16) ‖ ciphertext, nonce =
    BLAKE2b(epk ‖ recipient key, 24), crypto_box (X25519, HSalsa20, XSalsa20-Poly1305)."""
    epk, public = sealed[:32], sodium.crypto_scalarmult_base(envelope_key_private)
    nonce = hashlib.blake2b(epk + public, digest_size=24).digest()
    return sodium.crypto_box_open(sealed[32:], nonce, epk, envelope_key_private)   # tag ‖ ciphertext


def parse_session_message(data):
    """Session messages ("End-to-end"): u8 version (1) ‖ u8 kind ‖ body; kind 1: initial header
    (97 or 129 bytes) ‖ ratchet message, kind 2: ratchet message (header 40 ‖ ciphertext ‖ tag 16)."""
    if len(data) < 2 or data[0] != 1 or data[1] not in (1, 2):
        raise Refused("session message: unknown version or kind")
    body = data[2:]
    if data[1] == 1:
        if not body:
            raise Refused("session message: empty")
        try:
            header_len = 129 if body[0] == session.FLAG_ONE_TIME_PREKEY else 97
            session.decode_initial_header(body[:header_len])
        except ValueError as error:
            raise Refused("session message: %s" % error) from error
        body = body[header_len:]
    try:
        session.decode_message(body)
    except ValueError as error:
        raise Refused("session message: %s" % error) from error
    return data[1]


def open_envelope(sealed, envelope_key_private, expected_id, recipient, precedence, ttl_class):
    """The opening rules of "Sealed envelopes", up to (not including) the checks against the
    session and the directory. Returns (fields, padded); raises Refused."""
    if len(sealed) not in BUCKETS:
        raise Refused("size: %d is not a bucket" % len(sealed))
    try:
        padded = SealedBox(PrivateKey(envelope_key_private)).decrypt(sealed)
    except CryptoError as error:
        raise Refused("does not open with the envelope key") from error
    session.ensure(open_by_hand(sealed, envelope_key_private) == padded, "crypto_box_seal is not what the document says")
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
    sm = contents[at:]
    parse_session_message(sm)
    if id_ != expected_id:
        raise Refused("inner id differs from the id it was delivered under")
    if rcpt != recipient:
        raise Refused("for another device")
    if prec != precedence:
        raise Refused("precedence differs from the relay's label")
    # "whose TTL class is shorter than the one the relay applied": classes 1..4 are ordered by
    # duration.
    if ttl < ttl_class:
        raise Refused("TTL class shorter than the one the relay applied")
    fields = {"id": id_, "recipient": rcpt, "precedence": prec, "ttlClass": ttl, "sender": sender,
              "senderSequence": seq, "senderHead": head, "senderCheckpoint": checkpoint, "timestamp": timestamp,
              "sessionMessage": sm}
    return fields, padded


# ---------------------------------------------------------------------------------------
# The vectors.

def fixed(what, x25519=True, length=32):
    key = bytearray(hashlib.sha256(b"valise envelope vectors/" + what).digest()[:length])
    if x25519:
        key[0] &= 248
        key[31] = (key[31] & 127) | 64
    return bytes(key)


def message_id(n):
    return fixed(b"message id %d" % n, False, ID_LEN)


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

# The conversation the envelopes carry (session.py's X3DH and Double Ratchet, fixed keys):
# Alice starts a session with Bob (a one-time prekey) and sends a text (kind 1); Bob
# answers with a receipt (kind 2); Alice then sends two texts (kind 2). Alice's envelopes
# carry her checkpoint, Bob's none; so her last two session messages are 694 bytes (the
# largest for the 1,024 bucket: 136 + 145 + 694 + 1 = 976 = 1024 − 48) and 695 bytes (the
# smallest for 4,096).
BOUNDARY_SESSION_MESSAGE = 1024 - 48 - 1 - FIXED - CHECKPOINT_LEN
BOUNDARY_TEXT = BOUNDARY_SESSION_MESSAGE - 2 - 40 - 16 - 6   # 2 + header 40 + (6 + text) + tag 16


def conversation_plan():
    return [
        dict(name="alice to bob: a text, session message of kind 1 (initial)", sender="alice",
             id=message_id(1), contents=encode_text(TEXTS[2]), precedence=2, ttlClass=3,
             timestamp=1795000000),
        dict(name="bob to alice: a receipt, session message of kind 2", sender="bob",
             id=message_id(2), contents=encode_receipt([message_id(1)]), precedence=0, ttlClass=2,
             timestamp=1795000017),
        dict(name="alice to bob: the largest session message for the 1,024 bucket", sender="alice",
             id=message_id(3), contents=encode_text("x" * BOUNDARY_TEXT), precedence=1, ttlClass=4,
             timestamp=1795000100),
        dict(name="alice to bob: one byte more, the 4,096 bucket", sender="alice",
             id=message_id(4), contents=encode_text("y" * (BOUNDARY_TEXT + 1)), precedence=3, ttlClass=1,
             timestamp=1795000101),
    ]


async def conversation():
    """The keys, the X3DH agreement and the session messages of conversation_plan()."""
    alice_seed, bob_seed = fixed(b"alice seed", False), fixed(b"bob seed", False)
    signed_prekey, one_time_prekey = fixed(b"bob signed prekey"), fixed(b"bob one-time prekey")
    ephemeral = fixed(b"alice ephemeral")
    alice_ratchet = [fixed(b"alice ratchet %d" % i) for i in range(2)]
    bob_ratchet = [fixed(b"bob ratchet %d" % i) for i in range(2)]

    alice_x3dh = session.x3dh_state(alice_seed, [fixed(b"alice signed prekey (unused)")])
    bob_x3dh = session.x3dh_state(bob_seed, [signed_prekey])
    with session.scripted_x3dh_randomness([one_time_prekey]):
        bob_x3dh.generate_pre_keys(1)
    bundle = bob_x3dh.bundle
    with session.scripted_x3dh_randomness([ephemeral]):
        sk, ad, header = await alice_x3dh.get_shared_secret_active(bundle, b"", require_pre_key=True)
    initial_header = session.encode_initial_header(header)
    bob_sk, bob_ad, bob_spk = await bob_x3dh.get_shared_secret_passive(
        session.decode_initial_header(initial_header), b"", require_pre_key=True)
    session.ensure((bob_sk, bob_ad) == (sk, ad), "X3DH: the two sides disagree")

    alice_config, alice_pending = session.ratchet_config(alice_ratchet)
    bob_config, bob_pending = session.ratchet_config(bob_ratchet)
    alice = bob = None
    alice_has_read = False
    plan = conversation_plan()
    for step in plan:
        if step["sender"] == "alice":
            if alice is None:
                alice, sent = await session.ValiseRatchet.encrypt_initial_message(
                    **alice_config, shared_secret=sk, recipient_ratchet_pub=bundle.signed_pre_key,
                    message=step["contents"], associated_data=ad)
            else:
                sent = await alice.encrypt_message(step["contents"], ad)
            ratchet_message = session.encode_message(sent)
            # Kind 1 with the initial header until Alice has decrypted a message of the session.
            sm = (b"\x01\x01" + initial_header if not alice_has_read else b"\x01\x02") + ratchet_message
            received = session.decode_message(ratchet_message)
            if bob is None:
                bob, opened = await session.ValiseRatchet.decrypt_initial_message(
                    **bob_config, shared_secret=bob_sk, own_ratchet_priv=bob_spk.priv,
                    message=received, associated_data=bob_ad)
            else:
                opened = await bob.decrypt_message(received, bob_ad)
        else:
            sent = await bob.encrypt_message(step["contents"], bob_ad)
            ratchet_message = session.encode_message(sent)
            sm = b"\x01\x02" + ratchet_message
            opened = await alice.decrypt_message(session.decode_message(ratchet_message), ad)
            alice_has_read = True
        session.ensure(opened == step["contents"], "%s: did not decrypt" % step["name"])
        step["sessionMessage"] = sm
    session.ensure(not alice_pending and not bob_pending, "a ratchet key was not used")

    keys = {
        "aliceSeed": alice_seed, "bobSeed": bob_seed,
        "aliceIdentityKey": header.identity_key, "bobIdentityKey": bundle.identity_key,
        "aliceEnvelopeKey": fixed(b"alice envelope key"), "bobEnvelopeKey": fixed(b"bob envelope key"),
        "bobSignedPrekey": signed_prekey, "bobSignedPrekeyPublic": bundle.signed_pre_key,
        "bobOneTimePrekey": one_time_prekey, "bobOneTimePrekeyPublic": header.pre_key,
        "aliceEphemeral": ephemeral, "associatedData": ad, "initialHeader": initial_header,
    }
    session.ensure(keys["aliceIdentityKey"] == sodium.crypto_sign_seed_keypair(alice_seed)[0], "Alice's identity key")
    session.ensure(keys["bobIdentityKey"] == sodium.crypto_sign_seed_keypair(bob_seed)[0], "Bob's identity key")
    for who in ("alice", "bob"):
        keys[who + "EnvelopeKeyPublic"] = sodium.crypto_scalarmult_base(keys[who + "EnvelopeKey"])
    return keys, [k for k in alice_ratchet], [k for k in bob_ratchet], plan


DIRECTORY = {  # each sender's view of the directory: sequence and head hash
    "alice": (12, fixed(b"directory head 12", False)),
    "bob": (13, fixed(b"directory head 13", False)),
}


def alice_checkpoint():
    """Alice's newest checkpoint ("Checkpoints"): entry 11 of her directory, signed by a
    fixed checkpoint key with purpose `checkpoint`."""
    seed = fixed(b"checkpoint key seed", False)
    public, secret = sodium.crypto_sign_seed_keypair(seed)
    statement = b"\x01" + struct.pack(">Q", 11) + fixed(b"directory head 11", False) + struct.pack(">Q", 1794999000)
    signature = sodium.crypto_sign(b"valise/v1/checkpoint\x00" + statement, secret)[:64]
    return statement + public + signature


def envelope_inputs(keys, step):
    other = "bob" if step["sender"] == "alice" else "alice"
    sequence, head = DIRECTORY[step["sender"]]
    return {"id": step["id"], "recipient": keys[other + "IdentityKey"], "precedence": step["precedence"],
            "ttlClass": step["ttlClass"], "sender": keys[step["sender"] + "IdentityKey"],
            "senderSequence": sequence, "senderHead": head,
            "senderCheckpoint": alice_checkpoint() if step["sender"] == "alice" else None, "timestamp": step["timestamp"],
            "sessionMessage": step["sessionMessage"]}


def invalid_envelopes(keys, first):
    """Plaintexts (already padded, or deliberately not) that must be refused once opened, all
    sealed to Bob's envelope key and delivered under `first`'s id, precedence and TTL class."""
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
        ("contents: version 1 (no longer read: it has no checkpoint field)", raw(b"\x01" + contents[1:])),
        ("contents: version 3", raw(b"\x03" + contents[1:])),
        ("contents: version 0", raw(b"\x00" + contents[1:])),
        ("contents: has-checkpoint 2", raw(contents[:has_at] + b"\x02" + contents[has_at + 1:])),
        ("contents: a checkpoint of version 2", raw(contents[:has_at + 1] + b"\x02" + contents[has_at + 2:])),
        ("contents: has-checkpoint 0 before the checkpoint's bytes",
         raw(contents[:has_at] + b"\x00" + contents[has_at + 1:])),
        ("contents: precedence 4", with_(precedence=4)),
        ("contents: TTL class 5", with_(ttlClass=5)),
        ("contents: TTL class 0 (DEFAULT is for relay requests, never inside)", with_(ttlClass=0)),
        ("contents: the length says one byte more than follows",
         raw(contents[:length_at] + struct.pack(">I", len(good["sessionMessage"]) + 1) + contents[rest:])),
        ("contents: a byte left over after the session message",
         raw(contents[:length_at] + struct.pack(">I", len(good["sessionMessage"]) - 1) + contents[rest:])),
        ("contents: shorter than 136 bytes", raw(contents[:FIXED - 1])),
        ("padding: zero bytes without 0x80", contents + b"\x00" * (size - len(contents))),
        ("padding: 0x80 followed by a non-zero byte", contents + b"\x80" + b"\x00" * (size - len(contents) - 2) + b"\x01"),
        ("padding: none (contents fill the bucket)",
         contents + b"\x41" * (size - len(contents))),
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
          "envelopes) alone, on PyNaCl (crypto_box_seal, sodium_pad); the session messages are made "
          "by scripts/interop/session.py (PyPI x3dh 1.3.0, doubleratchet 1.3.0). Every input is "
          "SHA-256 of a fixed label. crypto_box_seal is randomised: every \"sealed\" field must open "
          "with the recipient's envelope key to exactly \"padded\"; `envelope.py check` compares "
          "everything else byte for byte.")
SEALED = "sealed"


async def build(sealed_given=None):
    """The vectors as a JSON-ready dict. With `sealed_given` (a file being checked), each sealed
    field is taken from it after checking that it opens to what it must; else freshly sealed."""
    keys, alice_ratchet, bob_ratchet, plan = await conversation()
    given = iter(sealed_given or [])

    def sealed_for(padded, public, private):
        if sealed_given is None:
            return seal(padded, public)
        data = next(given)
        try:
            opened = SealedBox(PrivateKey(private)).decrypt(data)
        except CryptoError as error:
            raise Refused("a sealed envelope of the file does not open with its envelope key") from error
        if opened != padded:
            raise Refused("a sealed envelope of the file opens to other bytes than its \"padded\"")
        return data

    contents = [{"kind": "text", "text": t, "encoded": encode_text(t)} for t in TEXTS]
    contents += [{"kind": "receipt", "ids": ids, "encoded": encode_receipt(ids)} for ids in RECEIPTS]
    for c in contents:
        decoded = decode_contents(c["encoded"])
        session.ensure(decoded == {k: c[k] for k in decoded}, "contents do not decode to themselves")
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
            session.ensure(ok, "a text of %d bytes accepted" % length)
        except Refused:
            session.ensure(not ok, "a text of %d bytes refused" % length)

    envelopes = []
    for step in plan:
        e = envelope_inputs(keys, step)
        body, padded = padded_contents(e)
        recipient = "bob" if step["sender"] == "alice" else "alice"
        sealed = sealed_for(padded, keys[recipient + "EnvelopeKeyPublic"], keys[recipient + "EnvelopeKey"])
        fields, opened = open_envelope(sealed, keys[recipient + "EnvelopeKey"], e["id"], e["recipient"],
                                       e["precedence"], e["ttlClass"])
        session.ensure(fields == e and opened == padded, "%s: does not open to its fields" % step["name"])
        entry = {"name": step["name"], "from": step["sender"], "to": recipient}
        entry.update(e)
        entry.update({"sessionMessageKind": e["sessionMessage"][1], "messageContents": step["contents"],
                      "contents": body, "bucket": len(sealed), "padded": padded, SEALED: sealed})
        envelopes.append(entry)
    self_test_refusals(keys, envelopes[0])

    invalid = []
    for why, padded in invalid_envelopes(keys, envelope_inputs(keys, plan[0])):
        sealed = sealed_for(padded, keys["bobEnvelopeKeyPublic"], keys["bobEnvelopeKey"])
        try:
            open_envelope(sealed, keys["bobEnvelopeKey"], plan[0]["id"], keys["bobIdentityKey"],
                          plan[0]["precedence"], plan[0]["ttlClass"])
        except Refused:
            invalid.append({"why": why, "padded": padded, SEALED: sealed})
            continue
        raise RuntimeError("invalid envelope accepted: %s" % why)
    if sealed_given is not None and next(given, None) is not None:
        raise Refused("the file has more sealed envelopes than the vectors")

    return {
        "source": SOURCE,
        "keys": hexed(keys),
        "aliceRatchetKeys": hexed(alice_ratchet),
        "bobRatchetKeys": hexed(bob_ratchet),
        "messageContents": hexed(contents),
        "invalidMessageContents": [{"why": why, "encoded": data.hex()}
                                   for why, data in INVALID_CONTENTS + NOT_UTF8],
        "envelopes": hexed(envelopes),
        "invalidEnvelopes": hexed(invalid),
        "invalidEnvelopesTo": {"recipient": "bob", "id": plan[0]["id"].hex(), "precedence": plan[0]["precedence"],
                               "ttlClass": plan[0]["ttlClass"]},
    }


def self_test_refusals(keys, entry):
    """The opening rules that need no special plaintext, on a good envelope (Python's reader)."""
    sealed, key = entry[SEALED], keys["bobEnvelopeKey"]
    args = dict(expected_id=entry["id"], recipient=entry["recipient"], precedence=entry["precedence"],
                ttl_class=entry["ttlClass"])

    def refused(data=sealed, private=key, **changes):
        a = dict(args)
        a.update(changes)
        try:
            open_envelope(data, private, **a)
        except Refused:
            return True
        return False

    flipped = bytearray(sealed)
    flipped[len(flipped) // 2] ^= 1
    checks = [
        refused(bytes(flipped)), refused(sealed[:-1]), refused(sealed + b"\x00"),
        refused(private=keys["aliceEnvelopeKey"]), refused(expected_id=message_id(99)),
        refused(recipient=keys["aliceIdentityKey"]), refused(precedence=(entry["precedence"] + 1) % 4),
        refused(ttl_class=entry["ttlClass"] + 1),
        not refused(ttl_class=entry["ttlClass"] - 1),     # a relay may shorten a TTL
    ]
    session.ensure(all(checks), "Python's reader accepts an envelope it must refuse: %s" % checks)


def check(path, valise_path=None):
    with open(path, "rb") as f:
        given = f.read()
    try:
        doc = json.loads(given)
        sealed = [bytes.fromhex(e[SEALED]) for e in doc["envelopes"] + doc["invalidEnvelopes"]]
    except (ValueError, KeyError, TypeError) as error:
        print("envelope.py: %s: not an envelope-vectors file (%s)" % (path, error), file=sys.stderr)
        return 1
    try:
        expected = asyncio.run(build(sealed))
    except Refused as error:
        print("envelope.py: %s: %s" % (path, error), file=sys.stderr)
        return 1
    except Exception as error:  # a failed self-check or a package error: not a match either
        print("envelope.py: recomputing the vectors failed: %r" % error, file=sys.stderr)
        return 1
    text = (json.dumps(expected, indent=2, ensure_ascii=False) + "\n").encode()
    if given != text:
        print("envelope.py: %s differs from the recomputed vectors" % path, file=sys.stderr)
        for key in sorted(set(doc) | set(expected)):
            if doc.get(key) != expected.get(key):
                print("  %s" % key, file=sys.stderr)
        return 1
    print("envelope.py: %s matches (%d contents, %d envelopes opened, %d refused)"
          % (path, len(expected["messageContents"]), len(expected["envelopes"]), len(expected["invalidEnvelopes"])))
    if valise_path is not None:
        return check_valise(valise_path, expected)
    return 0


def check_valise(path, expected):
    """Envelopes Valise sealed from the inputs of the vectors' envelopes: each must open with
    the recipient's envelope key to the same padded contents, and to the same fields."""
    keys = {k: bytes.fromhex(v) for k, v in expected["keys"].items()}
    by_name = {e["name"]: e for e in expected["envelopes"]}
    try:
        with open(path) as f:
            listed = json.load(f)["envelopes"]
        count = 0
        for item in listed:
            e = by_name[item["name"]]
            fields, padded = open_envelope(
                bytes.fromhex(item[SEALED]), keys[e["to"] + "EnvelopeKey"], bytes.fromhex(e["id"]),
                bytes.fromhex(e["recipient"]), e["precedence"], e["ttlClass"])
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
        sys.stdout.write(json.dumps(asyncio.run(build()), indent=2, ensure_ascii=False) + "\n")
        return 0
    if len(argv) in (2, 3) and argv[0] == "check":
        return check(*argv[1:])
    print("usage: envelope.py vectors | envelope.py check FILE [VALISE-SEALED-FILE]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
