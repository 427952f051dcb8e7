#!/usr/bin/env python3
"""Independent implementation of Valise's end-to-end sessions (PQXDH and the Double Ratchet),
written from docs/PROTOCOL.md alone (sections Conventions, Signatures and End-to-end) to
check that the document is byte-exact. It shares no code with the Swift implementation.
PQXDH is written here by hand (the PyPI x3dh package cannot take a KEM secret) on PyNaCl
(libsodium: X25519, Ed25519 and its conversion to X25519), `cryptography` (HKDF) and
kyber-py (FIPS 203 ML-KEM-1024, whose internal functions take the randomness as input);
the Double Ratchet is the PyPI package doubleratchet 1.3.0 (Syndace), configured only from
the text of the document.
    pip install doubleratchet==1.3.0 kyber-py==1.2.0 pynacl cryptography     (Python >= 3.10)

    session.py vectors        print the known-answer vectors (JSON) on standard output
    session.py check FILE     recompute them and exit 0 only if FILE is byte for byte what
                              `vectors` prints
    session.py read FILE      read the initial messages another implementation made (a JSON
                              list of Bob's keys, the session message and its plaintext) as
                              Bob, and exit 0 only if each decrypts to its plaintext

Tests/ValiseSessionTests/Fixtures/session-vectors.json is the output of `vectors`.

Every input is fixed (SHA-256 of a label): the identity seeds, the signed and one-time
prekeys, the KEM prekey's seed (d, z), Alice's ephemeral key, the encapsulation's
randomness m and every ratchet key pair, which the ratchet package is made to draw instead
of random bytes. Ed25519 signatures are deterministic (RFC 8032), so every byte of the
file is reproducible.
"""
import asyncio
import hashlib
import json
import struct
import sys

import doubleratchet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from doubleratchet.recommended import HashFunction as RatchetHash
from doubleratchet.recommended import diffie_hellman_ratchet_curve25519, kdf_hkdf, kdf_separate_hmacs
from kyber_py.ml_kem import ML_KEM_1024
from nacl import bindings as sodium
from nacl.exceptions import CryptoError
from nacl.signing import SigningKey, VerifyKey

# ---------------------------------------------------------------------------------------
# The parameters of PROTOCOL.md, "End-to-end".

PQXDH_INFO = b"Valise_PQXDH_X25519_SHA-256_ML-KEM-1024"
ROOT_INFO = b"Valise_DR_Root_v1"
MESSAGE_INFO = b"Valise_DR_Message_v1"
SIGNED_PREKEY_PREFIX = b"valise/v1/signed-prekey" + b"\x00"   # Signatures: "valise/v1/" ‖ purpose ‖ 0x00
KEM_PREKEY_PREFIX = b"valise/v1/kem-prekey" + b"\x00"
KEM_ONE_TIME, KEM_LAST_RESORT = 1, 2   # the u8 kind a KEM prekey's signature covers
MESSAGE_CHAIN_CONSTANT = b"\x02\x01"   # next chain key = HMAC(ck, 0x02), message key = HMAC(ck, 0x01)
MAX_SKIP = 1000
MAX_STORED_SKIPPED = 2000
HEADER_LEN = 40
TAG_LEN = 16
FLAG_ONE_TIME_PREKEY = 0x01
SESSION_VERSION = 2
KIND_INITIAL, KIND_RATCHET = 1, 2
KEM_EK_LEN = KEM_CT_LEN = 1568
KEM_ID_LEN = 32


def sha256(data):
    return hashlib.sha256(data).digest()


def x25519(private, public):
    out = sodium.crypto_scalarmult(private, public)
    if out == b"\x00" * 32:
        raise ValueError("X25519 gave the all-zero output (small-order key)")
    return out


def kem_prekey_signature(bob_seed, ek, kind):
    """Ed25519 by the identity key over "valise/v1/kem-prekey" ‖ 0x00 ‖ u8 kind ‖ ek."""
    return SigningKey(bob_seed).sign(KEM_PREKEY_PREFIX + bytes([kind]) + ek).signature


def pqxdh_secret(dh_outputs, kem_secret):
    """SK = HKDF-SHA-256(salt = 32 zero bytes, IKM = 0xFF × 32 ‖ DH1 ‖ DH2 ‖ DH3 [‖ DH4] ‖ SS, info, 32)."""
    return HKDF(hashes.SHA256(), 32, b"\x00" * 32, PQXDH_INFO).derive(b"\xff" * 32 + b"".join(dh_outputs) + kem_secret)


def pqxdh_ad(ik_a, ik_b, kem_id, ciphertext):
    """AD = IK_A ‖ IK_B ‖ KEM prekey id ‖ SHA-256(ct): 128 bytes."""
    return ik_a + ik_b + kem_id + sha256(ciphertext)


def pqxdh_initiate(alice_seed, bundle, ephemeral, m):
    """Alice: checks both signatures, then DH1..DH4 and the encapsulation (randomness m)."""
    ik_b = bundle["identityKey"]
    VerifyKey(ik_b).verify(SIGNED_PREKEY_PREFIX + bundle["signedPrekey"], bundle["signedPrekeySignature"])
    VerifyKey(ik_b).verify(KEM_PREKEY_PREFIX + bytes([bundle["kemPrekeyKind"]]) + bundle["kemPrekey"], bundle["kemPrekeySignature"])
    ik_a, ik_a_secret = sodium.crypto_sign_seed_keypair(alice_seed)
    ik_a_x = sodium.crypto_sign_ed25519_sk_to_curve25519(ik_a_secret)
    ik_b_x = sodium.crypto_sign_ed25519_pk_to_curve25519(ik_b)
    spk = bundle["signedPrekey"]
    dh = [x25519(ik_a_x, spk), x25519(ephemeral, ik_b_x), x25519(ephemeral, spk)]
    if bundle.get("oneTimePrekey"):
        dh.append(x25519(ephemeral, bundle["oneTimePrekey"]))
    kem_secret, ciphertext = ML_KEM_1024._encaps_internal(bundle["kemPrekey"], m)
    kem_id = sha256(bundle["kemPrekey"])
    header = (bytes([FLAG_ONE_TIME_PREKEY if bundle.get("oneTimePrekey") else 0]) + ik_a
              + sodium.crypto_scalarmult_base(ephemeral) + spk + (bundle.get("oneTimePrekey") or b"") + kem_id + ciphertext)
    return pqxdh_secret(dh, kem_secret), pqxdh_ad(ik_a, ik_b, kem_id, ciphertext), header, kem_secret


def decode_initial_header(data):
    """u8 flags (bit 0: an OPK follows) ‖ IK_A (32) ‖ EK_A (32) ‖ SPK_B (32) [‖ OPK_B (32)] ‖
    KEM prekey id (32) ‖ KEM ciphertext (1568)."""
    if not data or data[0] & ~FLAG_ONE_TIME_PREKEY:
        raise ValueError("initial header: bad flags")
    with_opk = bool(data[0] & FLAG_ONE_TIME_PREKEY)
    keys_end = 129 if with_opk else 97
    if len(data) != keys_end + KEM_ID_LEN + KEM_CT_LEN:
        raise ValueError("initial header: bad length")
    return {"identityKey": data[1:33], "ephemeralKey": data[33:65], "signedPrekey": data[65:97],
            "oneTimePrekey": data[97:129] if with_opk else None,
            "kemPrekeyID": data[keys_end:keys_end + KEM_ID_LEN], "kemCiphertext": data[keys_end + KEM_ID_LEN:]}


def initial_header_length(flags):
    return (129 if flags & FLAG_ONE_TIME_PREKEY else 97) + KEM_ID_LEN + KEM_CT_LEN


def pqxdh_respond(bob_seed, signed_prekey, one_time_prekey, kem_seed, header):
    """Bob, from the header's bytes and the private halves of the prekeys it names."""
    h = decode_initial_header(header)
    kem_ek, kem_dk = ML_KEM_1024._keygen_internal(kem_seed[:32], kem_seed[32:])
    ensure(h["signedPrekey"] == sodium.crypto_scalarmult_base(signed_prekey), "the header names another signed prekey")
    ensure(h["kemPrekeyID"] == sha256(kem_ek), "the header names another KEM prekey")
    ensure((h["oneTimePrekey"] is None) == (one_time_prekey is None), "one-time prekey use differs")
    ik_b, ik_b_secret = sodium.crypto_sign_seed_keypair(bob_seed)
    ik_b_x = sodium.crypto_sign_ed25519_sk_to_curve25519(ik_b_secret)
    ik_a_x = sodium.crypto_sign_ed25519_pk_to_curve25519(h["identityKey"])
    ek = h["ephemeralKey"]
    dh = [x25519(signed_prekey, ik_a_x), x25519(ik_b_x, ek), x25519(signed_prekey, ek)]
    if one_time_prekey is not None:
        ensure(h["oneTimePrekey"] == sodium.crypto_scalarmult_base(one_time_prekey), "the header names another one-time prekey")
        dh.append(x25519(one_time_prekey, ek))
    kem_secret = ML_KEM_1024.decaps(kem_dk, h["kemCiphertext"])
    return pqxdh_secret(dh, kem_secret), pqxdh_ad(h["identityKey"], ik_b, h["kemPrekeyID"], h["kemCiphertext"])


class RootKDF(kdf_hkdf.KDF):
    """KDF_RK(rk, dh_out) = HKDF-SHA-256(salt = rk, IKM = dh_out, info = "Valise_DR_Root_v1", L = 64)."""

    @staticmethod
    def _get_hash_function():
        return RatchetHash.SHA_256

    @staticmethod
    def _get_info():
        return ROOT_INFO


class MessageKDF(kdf_separate_hmacs.KDF):
    """KDF_CK: one HMAC-SHA-256 under the chain key per byte of MESSAGE_CHAIN_CONSTANT."""

    @staticmethod
    def _get_hash_function():
        return RatchetHash.SHA_256


class XChaCha20Poly1305(doubleratchet.AEAD):
    """ENCRYPT(mk, plaintext, ad): k ‖ n = HKDF-SHA-256(salt = 32 zero bytes, IKM = mk,
    info = "Valise_DR_Message_v1", L = 56); XChaCha20-Poly1305(k, n), ciphertext ‖ tag."""

    @staticmethod
    def _key_and_nonce(message_key):
        okm = HKDF(hashes.SHA256(), 56, b"\x00" * 32, MESSAGE_INFO).derive(message_key)
        return okm[:32], okm[32:56]

    @staticmethod
    async def encrypt(plaintext, key, associated_data):
        k, n = XChaCha20Poly1305._key_and_nonce(key)
        return sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, associated_data, n, k)

    @staticmethod
    async def decrypt(ciphertext, key, associated_data):
        k, n = XChaCha20Poly1305._key_and_nonce(key)
        try:
            return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, associated_data, n, k)
        except CryptoError as error:
            raise doubleratchet.AuthenticationFailedException(str(error)) from error


def encode_header(header):
    """DHs (32) ‖ u32 PN ‖ u32 N, big-endian."""
    if len(header.ratchet_pub) != 32:
        raise ValueError("ratchet public key must be 32 bytes")
    return header.ratchet_pub + struct.pack(">II", header.previous_sending_chain_length,
                                            header.sending_chain_length)


def decode_message(data):
    """Ratchet message = header (40) ‖ ciphertext ‖ tag."""
    if len(data) < HEADER_LEN + TAG_LEN:
        raise ValueError("ratchet message too short")
    pn, n = struct.unpack(">II", data[32:HEADER_LEN])
    return doubleratchet.EncryptedMessage(doubleratchet.Header(data[:32], pn, n), data[HEADER_LEN:])


def encode_message(message):
    return encode_header(message.header) + message.ciphertext


class ValiseRatchet(doubleratchet.DoubleRatchet):
    @staticmethod
    def _build_associated_data(associated_data, header):
        # Per-message associated data = AD (from PQXDH, 128 bytes) ‖ header.
        return associated_data + encode_header(header)


def ratchet_config(ratchet_keys):
    """The doubleratchet arguments for one party; its ratchet key pairs are ratchet_keys, in order."""
    pending = list(ratchet_keys)

    class ScriptedCurve25519(diffie_hellman_ratchet_curve25519.DiffieHellmanRatchet):
        @staticmethod
        def _generate_priv():
            if not pending:
                raise RuntimeError("the ratchet wants more key pairs than the vector provides")
            return pending.pop(0)

    config = dict(diffie_hellman_ratchet_class=ScriptedCurve25519, root_chain_kdf=RootKDF,
                  message_chain_kdf=MessageKDF, message_chain_constant=MESSAGE_CHAIN_CONSTANT,
                  dos_protection_threshold=MAX_SKIP, max_num_skipped_message_keys=MAX_STORED_SKIPPED,
                  aead=XChaCha20Poly1305)
    return config, pending


# ---------------------------------------------------------------------------------------
# The vectors.

def ensure(condition, what):
    if not condition:
        raise RuntimeError(what)


def fixed(vector, what, x25519=True):
    """A fixed 32-byte input: SHA-256 of a label; X25519 private keys are given clamped."""
    key = bytearray(hashlib.sha256(b"valise session vectors/" + vector + b"/" + what).digest())
    if x25519:
        key[0] &= 248
        key[31] = (key[31] & 127) | 64
    return bytes(key)


# The conversation, step by step: each message is made where it is sent (m3 after Bob has
# read m2 and m0, ...) and read by its recipient where it is delivered. Messages are numbered
# in send order; the deliveries give "deliveryOrder" = [2, 0, 3, 4, 1, 5].
CONVERSATION = [
    ("send", 0), ("send", 1), ("send", 2),
    ("deliver", 2), ("deliver", 0),
    ("send", 3), ("deliver", 3),
    ("send", 4), ("deliver", 4), ("deliver", 1),
    ("send", 5), ("deliver", 5),
]
SENDERS = ["alice", "alice", "alice", "bob", "alice", "bob"]
TEXTS = ["hello bob", "are you there?", "third, sent before any reply", "hi alice, got 0 and 2",
         "good, here is a fourth", "and 1 arrived last"]
ALICE_RATCHET_KEYS = 3   # at session start, then on receiving m3 and m5
BOB_RATCHET_KEYS = 2     # on receiving m2 (his first message), then m4


async def make_vector(label, with_one_time_prekey, kem_kind):
    """One vector: with or without a one-time X25519 prekey, with a one-time or the
    last-resort KEM prekey."""
    v = label.encode()
    alice_seed, bob_seed = fixed(v, b"alice seed", False), fixed(v, b"bob seed", False)
    signed_prekey = fixed(v, b"bob signed prekey")
    one_time_prekey = fixed(v, b"bob one-time prekey") if with_one_time_prekey else None
    kem_seed = fixed(v, b"bob kem prekey d", False) + fixed(v, b"bob kem prekey z", False)
    ephemeral = fixed(v, b"alice ephemeral")
    kem_randomness = fixed(v, b"alice kem encapsulation m", False)
    alice_ratchet = [fixed(v, b"alice ratchet %d" % i) for i in range(ALICE_RATCHET_KEYS)]
    bob_ratchet = [fixed(v, b"bob ratchet %d" % i) for i in range(BOB_RATCHET_KEYS)]

    # Bob's bundle, as the relay hands it out.
    bob_identity = sodium.crypto_sign_seed_keypair(bob_seed)[0]
    spk_public = sodium.crypto_scalarmult_base(signed_prekey)
    kem_ek, _ = ML_KEM_1024._keygen_internal(kem_seed[:32], kem_seed[32:])
    bundle = {
        "identityKey": bob_identity, "signedPrekey": spk_public,
        "signedPrekeySignature": SigningKey(bob_seed).sign(SIGNED_PREKEY_PREFIX + spk_public).signature,
        "oneTimePrekey": sodium.crypto_scalarmult_base(one_time_prekey) if one_time_prekey else None,
        "kemPrekey": kem_ek, "kemPrekeyKind": kem_kind, "kemPrekeySignature": kem_prekey_signature(bob_seed, kem_ek, kem_kind),
    }
    sk, ad, initial_header, kem_secret = pqxdh_initiate(alice_seed, bundle, ephemeral, kem_randomness)
    # Bob reads the initial header from its bytes.
    bob_sk, bob_ad = pqxdh_respond(bob_seed, signed_prekey, one_time_prekey, kem_seed, initial_header)
    ensure((bob_sk, bob_ad) == (sk, ad), "PQXDH: the two sides disagree")
    ensure(len(sk) == 32 and len(ad) == 128 and len(initial_header) == initial_header_length(initial_header[0]),
           "PQXDH output lengths")
    bob_spk_priv = signed_prekey

    # The Double Ratchet conversation.
    alice_config, alice_pending = ratchet_config(alice_ratchet)
    bob_config, bob_pending = ratchet_config(bob_ratchet)
    alice = bob = None
    messages = [None] * len(SENDERS)
    delivery_order = []
    for step, index in CONVERSATION:
        sender = SENDERS[index]
        plaintext = ("%s m%d: %s" % (label, index, TEXTS[index])).encode()
        if step == "send":
            if sender == "alice":
                if alice is None:
                    alice, sent = await ValiseRatchet.encrypt_initial_message(
                        **alice_config, shared_secret=sk, recipient_ratchet_pub=spk_public,
                        message=plaintext, associated_data=ad)
                else:
                    sent = await alice.encrypt_message(plaintext, ad)
            else:
                sent = await bob.encrypt_message(plaintext, bob_ad)
            messages[index] = {"from": sender, "plaintext": plaintext.hex(), "message": encode_message(sent).hex()}
        else:
            received = decode_message(bytes.fromhex(messages[index]["message"]))
            if sender == "alice":
                if bob is None:
                    bob, opened = await ValiseRatchet.decrypt_initial_message(
                        **bob_config, shared_secret=bob_sk, own_ratchet_priv=bob_spk_priv,
                        message=received, associated_data=bob_ad)
                else:
                    opened = await bob.decrypt_message(received, bob_ad)
            else:
                opened = await alice.decrypt_message(received, ad)
            ensure(opened == plaintext, "message %d did not decrypt to its plaintext" % index)
            delivery_order.append(index)
    ensure(not alice_pending and not bob_pending, "a ratchet key was not used")
    ensure(all(m is not None for m in messages), "a message was never sent")

    first = messages[0]["message"]
    vector = {
        "aliceSeed": alice_seed.hex(),
        "bobSeed": bob_seed.hex(),
        "aliceIdentityKey": initial_header[1:33].hex(),
        "bobIdentityKey": bob_identity.hex(),
        "bobSignedPrekey": signed_prekey.hex(),
        "bobSignedPrekeyPublic": spk_public.hex(),
        "signedPrekeySignature": bundle["signedPrekeySignature"].hex(),
    }
    if one_time_prekey is not None:
        vector["bobOneTimePrekey"] = one_time_prekey.hex()
        vector["bobOneTimePrekeyPublic"] = bundle["oneTimePrekey"].hex()
    vector.update({
        "bobKEMPrekeySeed": kem_seed.hex(),
        "bobKEMPrekeyPublic": kem_ek.hex(),
        "kemPrekeyKind": "oneTime" if kem_kind == KEM_ONE_TIME else "lastResort",
        "kemPrekeySignature": bundle["kemPrekeySignature"].hex(),
        "kemPrekeyID": sha256(kem_ek).hex(),
        "aliceEphemeral": ephemeral.hex(),
        "kemEncapsulationRandomness": kem_randomness.hex(),
        "kemCiphertext": initial_header[-KEM_CT_LEN:].hex(),
        "kemSharedSecret": kem_secret.hex(),
        "sharedSecret": sk.hex(),
        "associatedData": ad.hex(),
        "initialHeader": initial_header.hex(),
        "firstSessionMessage": (bytes([SESSION_VERSION, KIND_INITIAL]) + initial_header).hex() + first,
        "aliceRatchetKeys": [k.hex() for k in alice_ratchet],
        "bobRatchetKeys": [k.hex() for k in bob_ratchet],
        "messages": messages,
        "deliveryOrder": delivery_order,
    })
    return vector


SOURCE = ("scripts/interop/session.py vectors: an independent implementation written from "
          "docs/PROTOCOL.md (End-to-end) alone: PQXDH by hand on PyNaCl, cryptography's HKDF and "
          "kyber-py 1.2.0 (ML-KEM-1024), the Double Ratchet on the PyPI package doubleratchet 1.3.0 "
          "(Syndace); every input is SHA-256 of a fixed label, every output is computed by those.")
VECTORS = [("pq1", True, KEM_ONE_TIME), ("pq2", False, KEM_LAST_RESORT)]


async def document():
    vectors = [await make_vector(label, opk, kind) for label, opk, kind in VECTORS]
    return json.dumps({"source": SOURCE, "vectors": vectors}, indent=2) + "\n"


def check(path):
    with open(path, "rb") as f:
        given = f.read()
    try:
        listed = json.loads(given)["vectors"]
    except (ValueError, KeyError, TypeError) as error:
        print("session.py: %s: not a session-vectors file (%s)" % (path, error), file=sys.stderr)
        return 1
    try:
        expected = asyncio.run(document()).encode()
    except Exception as error:  # a failed self-check or a package error: not a match either
        print("session.py: recomputing the vectors failed: %r" % error, file=sys.stderr)
        return 1
    if given == expected:
        print("session.py: %s matches (%d vectors)" % (path, len(VECTORS)))
        return 0
    print("session.py: %s differs from the recomputed vectors" % path, file=sys.stderr)
    try:
        for i, (a, b) in enumerate(zip(listed, json.loads(expected)["vectors"])):
            for key in sorted(set(a) | set(b)):
                if a.get(key) != b.get(key):
                    print("  vector %d: %s" % (i, key), file=sys.stderr)
    except (ValueError, AttributeError):
        pass
    return 1


async def read_one(entry):
    """Bob reads one initial session message: u8 version (2) ‖ u8 kind (1) ‖ initial header ‖
    ratchet message."""
    message = bytes.fromhex(entry["sessionMessage"])
    ensure(len(message) > 3 and message[0] == SESSION_VERSION and message[1] == KIND_INITIAL, "not an initial message of version 2")
    header_end = 2 + initial_header_length(message[2])
    one_time = bytes.fromhex(entry["bobOneTimePrekey"]) if entry.get("bobOneTimePrekey") else None
    sk, ad = pqxdh_respond(bytes.fromhex(entry["bobSeed"]), bytes.fromhex(entry["bobSignedPrekey"]), one_time,
                           bytes.fromhex(entry["bobKEMPrekeySeed"]), message[2:header_end])
    config, _ = ratchet_config([sodium.randombytes(32)])
    _, opened = await ValiseRatchet.decrypt_initial_message(
        **config, shared_secret=sk, own_ratchet_priv=bytes.fromhex(entry["bobSignedPrekey"]),
        message=decode_message(message[header_end:]), associated_data=ad)
    ensure(opened == bytes.fromhex(entry["plaintext"]), "the message decrypted to another plaintext")


def read(path):
    with open(path) as f:
        entries = json.load(f)["messages"]
    for i, entry in enumerate(entries):
        try:
            asyncio.run(read_one(entry))
        except Exception as error:
            print("session.py: %s: message %d cannot be read: %r" % (path, i, error), file=sys.stderr)
            return 1
    print("session.py: %s: read %d initial messages" % (path, len(entries)))
    return 0


def main(argv):
    if doubleratchet.__version__ != "1.3.0":
        print("session.py: warning: written for doubleratchet 1.3.0, found %s" % doubleratchet.__version__, file=sys.stderr)
    if argv == ["vectors"]:
        sys.stdout.write(asyncio.run(document()))
        return 0
    if len(argv) == 2 and argv[0] == "check":
        return check(argv[1])
    if len(argv) == 2 and argv[0] == "read":
        return read(argv[1])
    print("usage: session.py vectors | session.py check FILE | session.py read FILE", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
