#!/usr/bin/env python3
"""Independent implementation of Valise's end-to-end sessions (X3DH and the Double Ratchet),
written from docs/PROTOCOL.md alone (sections Conventions, Signatures and End-to-end) to
check that the document is byte-exact. It shares no code with the Swift implementation:
it is built on the PyPI packages x3dh 1.3.0 and doubleratchet 1.3.0 (Syndace), configured
only from the text of the document, and on PyNaCl (libsodium) for XChaCha20-Poly1305 and
Ed25519 verification.
    pip install x3dh==1.3.0 doubleratchet==1.3.0 pynacl      (Python >= 3.10)

    session.py vectors        print the known-answer vectors (JSON) on standard output
    session.py check FILE     recompute them and exit 0 only if FILE is byte for byte what
                              `vectors` prints, except "signedPrekeySignature": the x3dh
                              package signs with a random nonce, so that field must instead
                              verify (PyNaCl, and x3dh when Alice checks Bob's bundle)

Tests/ValiseSessionTests/Fixtures/session-vectors.json is the output of `vectors`.

Every input is fixed (SHA-256 of a label): the identity seeds, the signed and one-time
prekeys, Alice's ephemeral key and every ratchet key pair, which the packages are made to
draw instead of random bytes. Every output (public keys, shared secret, associated data,
headers, ratchet messages) is computed by the packages; nothing computed by Valise is
written here.
"""
import asyncio
import contextlib
import hashlib
import json
import struct
import sys
import types

import doubleratchet
import x3dh
import x3dh.base_state
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from doubleratchet.recommended import HashFunction as RatchetHash
from doubleratchet.recommended import diffie_hellman_ratchet_curve25519, kdf_hkdf, kdf_separate_hmacs
from nacl import bindings as sodium
from nacl.exceptions import BadSignatureError, CryptoError
from nacl.signing import VerifyKey
from x3dh.identity_key_pair import IdentityKeyPairSeed

# ---------------------------------------------------------------------------------------
# The parameters of PROTOCOL.md, "End-to-end".

X3DH_INFO = b"Valise_X3DH_v1"
ROOT_INFO = b"Valise_DR_Root_v1"
MESSAGE_INFO = b"Valise_DR_Message_v1"
SIGNED_PREKEY_PREFIX = b"valise/v1/signed-prekey" + b"\x00"   # Signatures: "valise/v1/" ‖ purpose ‖ 0x00
MESSAGE_CHAIN_CONSTANT = b"\x02\x01"   # next chain key = HMAC(ck, 0x02), message key = HMAC(ck, 0x01)
MAX_SKIP = 1000
MAX_STORED_SKIPPED = 2000
HEADER_LEN = 40
TAG_LEN = 16
FLAG_ONE_TIME_PREKEY = 0x01


class ValiseX3DH(x3dh.BaseState):
    """x3dh with Encode(ED_25519, k) = k and Encode(CURVE_25519, k) = "valise/v1/signed-prekey" ‖ 0x00 ‖ k.
    CURVE_25519 encodings are only ever used by x3dh for the signed prekey's signature."""

    @staticmethod
    def _encode_public_key(key_format, pub):
        if key_format is x3dh.IdentityKeyFormat.ED_25519:
            return pub
        return SIGNED_PREKEY_PREFIX + pub


def x3dh_state(seed, draws):
    """An x3dh state for the Ed25519 identity seed; its signed prekey is the next draw."""
    with scripted_x3dh_randomness(draws):
        return ValiseX3DH.create(x3dh.IdentityKeyFormat.ED_25519, x3dh.HashFunction.SHA_256,
                                 X3DH_INFO, IdentityKeyPairSeed(seed))


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
        # Per-message associated data = AD (from X3DH) ‖ header.
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


def encode_initial_header(header):
    """u8 flags (bit 0: an OPK follows) ‖ IK_A (32) ‖ EK_A (32) ‖ SPK_B (32) [‖ OPK_B (32)]."""
    flags = 0 if header.pre_key is None else FLAG_ONE_TIME_PREKEY
    out = bytes([flags]) + header.identity_key + header.ephemeral_key + header.signed_pre_key
    return out if header.pre_key is None else out + header.pre_key


def decode_initial_header(data):
    if not data or data[0] & ~FLAG_ONE_TIME_PREKEY:
        raise ValueError("initial header: bad flags")
    with_opk = bool(data[0] & FLAG_ONE_TIME_PREKEY)
    if len(data) != (129 if with_opk else 97):
        raise ValueError("initial header: bad length")
    return x3dh.Header(identity_key=data[1:33], ephemeral_key=data[33:65], signed_pre_key=data[65:97],
                       pre_key=data[97:129] if with_opk else None)


@contextlib.contextmanager
def scripted_x3dh_randomness(draws):
    """Make x3dh draw its private keys (signed prekey, one-time prekeys, ephemeral key) from
    `draws`, in order. Only x3dh's own use of `secrets` is replaced: the XEdDSA package still
    signs the signed prekey with a random nonce."""
    pending = list(draws)

    def token_bytes(n):
        if n != 32 or not pending:
            raise RuntimeError("x3dh drew randomness the vector does not provide")
        return pending.pop(0)

    def choice(sequence):
        if len(sequence) != 1:
            raise RuntimeError("the bundle should hold exactly one one-time prekey")
        return sequence[0]

    saved = x3dh.base_state.secrets
    x3dh.base_state.secrets = types.SimpleNamespace(token_bytes=token_bytes, choice=choice)
    try:
        yield
    finally:
        x3dh.base_state.secrets = saved
    if pending:
        raise RuntimeError("x3dh did not draw every key the vector provides")


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


async def make_vector(label, with_one_time_prekey, signature=None):
    """One vector. With `signature` (from a file being checked), Alice is given that signature
    in Bob's bundle instead of the one the x3dh package just made."""
    v = label.encode()
    alice_seed, bob_seed = fixed(v, b"alice seed", False), fixed(v, b"bob seed", False)
    signed_prekey = fixed(v, b"bob signed prekey")
    one_time_prekey = fixed(v, b"bob one-time prekey") if with_one_time_prekey else None
    ephemeral = fixed(v, b"alice ephemeral")
    alice_ratchet = [fixed(v, b"alice ratchet %d" % i) for i in range(ALICE_RATCHET_KEYS)]
    bob_ratchet = [fixed(v, b"bob ratchet %d" % i) for i in range(BOB_RATCHET_KEYS)]

    # X3DH. Alice's own signed prekey is drawn too (x3dh makes one), but never used.
    alice_x3dh = x3dh_state(alice_seed, [fixed(v, b"alice signed prekey (unused)")])
    bob_x3dh = x3dh_state(bob_seed, [signed_prekey])
    if one_time_prekey is not None:
        with scripted_x3dh_randomness([one_time_prekey]):
            bob_x3dh.generate_pre_keys(1)
    bundle = bob_x3dh.bundle
    if signature is not None:
        bundle = bundle._replace(signed_pre_key_sig=signature)
    # The signature, as PROTOCOL.md defines it, checked with libsodium (raises if bad).
    VerifyKey(bundle.identity_key).verify(SIGNED_PREKEY_PREFIX + bundle.signed_pre_key, bundle.signed_pre_key_sig)
    with scripted_x3dh_randomness([ephemeral]):
        sk, ad, header = await alice_x3dh.get_shared_secret_active(bundle, b"", require_pre_key=False)
    initial_header = encode_initial_header(header)

    # Bob reads the initial header from its bytes.
    bob_sk, bob_ad, bob_spk = await bob_x3dh.get_shared_secret_passive(
        decode_initial_header(initial_header), b"", require_pre_key=False)
    ensure((bob_sk, bob_ad, bob_spk.priv) == (sk, ad, signed_prekey), "X3DH: the two sides disagree")
    # Cross-checks with libsodium of what the document says the keys are.
    ensure(bundle.identity_key == sodium.crypto_sign_seed_keypair(bob_seed)[0], "Bob's identity key")
    ensure(header.identity_key == sodium.crypto_sign_seed_keypair(alice_seed)[0], "Alice's identity key")
    ensure(len(sk) == 32 and len(ad) == 64 and len(initial_header) == (129 if with_one_time_prekey else 97),
           "X3DH output lengths")

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
                        **alice_config, shared_secret=sk, recipient_ratchet_pub=bundle.signed_pre_key,
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
                        **bob_config, shared_secret=bob_sk, own_ratchet_priv=bob_spk.priv,
                        message=received, associated_data=bob_ad)
                else:
                    opened = await bob.decrypt_message(received, bob_ad)
            else:
                opened = await alice.decrypt_message(received, ad)
            ensure(opened == plaintext, "message %d did not decrypt to its plaintext" % index)
            delivery_order.append(index)
    ensure(not alice_pending and not bob_pending, "a ratchet key was not used")
    ensure(all(m is not None for m in messages), "a message was never sent")

    vector = {
        "aliceSeed": alice_seed.hex(),
        "bobSeed": bob_seed.hex(),
        "aliceIdentityKey": header.identity_key.hex(),
        "bobIdentityKey": bundle.identity_key.hex(),
        "bobSignedPrekey": bob_spk.priv.hex(),
        "bobSignedPrekeyPublic": bundle.signed_pre_key.hex(),
        "signedPrekeySignature": bundle.signed_pre_key_sig.hex(),
    }
    if one_time_prekey is not None:
        vector["bobOneTimePrekey"] = one_time_prekey.hex()
        vector["bobOneTimePrekeyPublic"] = header.pre_key.hex()
    vector.update({
        "aliceEphemeral": ephemeral.hex(),
        "sharedSecret": sk.hex(),
        "associatedData": ad.hex(),
        "initialHeader": initial_header.hex(),
        "aliceRatchetKeys": [k.hex() for k in alice_ratchet],
        "bobRatchetKeys": [k.hex() for k in bob_ratchet],
        "messages": messages,
        "deliveryOrder": delivery_order,
    })
    return vector


SOURCE = ("scripts/interop/session.py vectors: an independent implementation written from "
          "docs/PROTOCOL.md (End-to-end) alone, on the PyPI packages x3dh 1.3.0 and doubleratchet "
          "1.3.0 (Syndace) and PyNaCl; every input is SHA-256 of a fixed label, every output is "
          "computed by those packages. signedPrekeySignature is made by the x3dh package with a "
          "random nonce: `session.py check` verifies it instead of comparing it.")
VECTORS = [("v1", True), ("v2", False)]


async def document(signatures=None):
    signatures = signatures or [None] * len(VECTORS)
    vectors = [await make_vector(label, opk, sig) for (label, opk), sig in zip(VECTORS, signatures)]
    return json.dumps({"source": SOURCE, "vectors": vectors}, indent=2) + "\n"


def check(path):
    with open(path, "rb") as f:
        given = f.read()
    try:
        listed = json.loads(given)["vectors"]
        signatures = [bytes.fromhex(v["signedPrekeySignature"]) for v in listed]
        if len(signatures) != len(VECTORS) or any(len(s) != 64 for s in signatures):
            raise ValueError("expected %d vectors with 64-byte signatures" % len(VECTORS))
    except (ValueError, KeyError, TypeError) as error:
        print("session.py: %s: not a session-vectors file (%s)" % (path, error), file=sys.stderr)
        return 1
    try:
        expected = asyncio.run(document(signatures)).encode()
    except (BadSignatureError, x3dh.KeyAgreementException) as error:
        print("session.py: %s: a signed prekey's signature does not verify (%s)" % (path, error), file=sys.stderr)
        return 1
    except Exception as error:  # a failed self-check or a package error: not a match either
        print("session.py: recomputing the vectors failed: %r" % error, file=sys.stderr)
        return 1
    if given == expected:
        print("session.py: %s matches (%d vectors; signatures verified)" % (path, len(VECTORS)))
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


def main(argv):
    for package in (x3dh, doubleratchet):
        if package.__version__ != "1.3.0":
            print("session.py: warning: written for %s 1.3.0, found %s" % (package.__name__, package.__version__),
                  file=sys.stderr)
    if argv == ["vectors"]:
        sys.stdout.write(asyncio.run(document()))
        return 0
    if len(argv) == 2 and argv[0] == "check":
        return check(argv[1])
    print("usage: session.py vectors | session.py check FILE", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
