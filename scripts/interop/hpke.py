#!/usr/bin/env python3
"""HPKE (RFC 9180) Base mode and the X-Wing KEM (draft-connolly-cfrg-xwing-kem-06), written
by hand from those two texts for the interoperability check of Valise's sealed envelopes
(docs/PROTOCOL.md, "Sealed envelopes"). Nothing here is shared with Valise, which uses
swift-crypto. The parts underneath are independent libraries: ML-KEM-768 from kyber-py
(FIPS 203, used through `_keygen_internal` and `_encaps_internal` so that key generation and
encapsulation can be made deterministic), X25519 and ChaCha20-Poly1305 from PyNaCl
(libsodium), SHA3-256, SHAKE256 and HMAC-SHA256 from Python's hashlib and hmac.
    pip install kyber-py pynacl                     (Python >= 3.10)

    hpke.py selftest XWING.json HPKE.json   X-Wing against the draft's Appendix C vectors
                                            (Tests/ValiseCryptoTests/Fixtures/xwing_draft.json),
                                            HPKE against RFC 9180 A.2.1
                                            (Tests/ValiseCryptoTests/Fixtures/hpke_rfc9180.json)
"""
import hashlib
import hmac
import json
import struct
import sys

from kyber_py.ml_kem import ML_KEM_768
from nacl import bindings as sodium
from nacl.exceptions import CryptoError

# ---------------------------------------------------------------------------------------
# X-Wing, draft-connolly-cfrg-xwing-kem-06 sections 5.2 to 5.5.

XWING_LABEL = bytes.fromhex("5c2e2f2f5e5c")       # "\./" ‖ "/^\"
XWING_PUBLIC_KEY_LEN, XWING_CIPHERTEXT_LEN = 1216, 1120
MLKEM_PUBLIC_KEY_LEN, MLKEM_CIPHERTEXT_LEN = 1184, 1088


def x25519(scalar, point):
    # libsodium refuses an all-zero result; X-Wing itself does not check (a valid X-Wing
    # public key never gives one), so the refusal only ever meets hostile input.
    return sodium.crypto_scalarmult(scalar, point)


def x25519_base(scalar):
    return sodium.crypto_scalarmult_base(scalar)


def xwing_expand(sk):
    """expandDecapsulationKey: (sk_M, sk_X, pk_M, pk_X)."""
    if len(sk) != 32:
        raise ValueError("an X-Wing decapsulation key (seed) is 32 bytes")
    expanded = hashlib.shake_256(sk).digest(96)
    pk_m, sk_m = ML_KEM_768._keygen_internal(expanded[0:32], expanded[32:64])
    sk_x = expanded[64:96]
    return sk_m, sk_x, pk_m, x25519_base(sk_x)


def xwing_public_key(sk):
    _, _, pk_m, pk_x = xwing_expand(sk)
    return pk_m + pk_x


def xwing_combiner(ss_m, ss_x, ct_x, pk_x):
    return hashlib.sha3_256(ss_m + ss_x + ct_x + pk_x + XWING_LABEL).digest()


def xwing_encapsulate_derand(pk, eseed):
    """EncapsulateDerand: (ss, ct) from the 64-byte eseed."""
    if len(pk) != XWING_PUBLIC_KEY_LEN or len(eseed) != 64:
        raise ValueError("X-Wing: a 1216-byte public key and a 64-byte eseed")
    pk_m, pk_x = pk[:MLKEM_PUBLIC_KEY_LEN], pk[MLKEM_PUBLIC_KEY_LEN:]
    ek_x = eseed[32:64]
    ct_x = x25519_base(ek_x)
    ss_x = x25519(ek_x, pk_x)
    ss_m, ct_m = ML_KEM_768._encaps_internal(pk_m, eseed[0:32])
    return xwing_combiner(ss_m, ss_x, ct_x, pk_x), ct_m + ct_x


def xwing_decapsulate(ct, sk):
    if len(ct) != XWING_CIPHERTEXT_LEN:
        raise ValueError("an X-Wing ciphertext is 1120 bytes")
    sk_m, sk_x, _, pk_x = xwing_expand(sk)
    ct_m, ct_x = ct[:MLKEM_CIPHERTEXT_LEN], ct[MLKEM_CIPHERTEXT_LEN:]
    ss_m = ML_KEM_768.decaps(sk_m, ct_m)
    return xwing_combiner(ss_m, x25519(sk_x, ct_x), ct_x, pk_x)


# ---------------------------------------------------------------------------------------
# HPKE, RFC 9180: section 4 (LabeledExtract/LabeledExpand over HKDF-SHA256), 4.1 (DHKEM, for
# the RFC's own vector), 5.1 (KeySchedule, mode_base), 5.2 (single-shot seal/open, seq 0).

KEM_XWING, KEM_DHKEM_X25519 = 0x647A, 0x0020
KDF_HKDF_SHA256, AEAD_CHACHA20POLY1305 = 0x0001, 0x0003
MODE_BASE = 0x00
NK, NN, NH = 32, 12, 32


def hkdf_extract(salt, ikm):
    return hmac.new(salt or b"\x00" * NH, ikm, hashlib.sha256).digest()


def hkdf_expand(prk, info, length):
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def labeled_extract(suite_id, salt, label, ikm):
    return hkdf_extract(salt, b"HPKE-v1" + suite_id + label + ikm)


def labeled_expand(suite_id, prk, label, info, length):
    return hkdf_expand(prk, struct.pack(">H", length) + b"HPKE-v1" + suite_id + label + info, length)


def hpke_suite_id(kem_id, kdf_id=KDF_HKDF_SHA256, aead_id=AEAD_CHACHA20POLY1305):
    return b"HPKE" + struct.pack(">HHH", kem_id, kdf_id, aead_id)


def key_schedule_base(suite_id, shared_secret, info):
    """(key, base_nonce) for mode_base, empty psk and psk_id."""
    psk_id_hash = labeled_extract(suite_id, b"", b"psk_id_hash", b"")
    info_hash = labeled_extract(suite_id, b"", b"info_hash", info)
    context = bytes([MODE_BASE]) + psk_id_hash + info_hash
    secret = labeled_extract(suite_id, shared_secret, b"secret", b"")
    return (labeled_expand(suite_id, secret, b"key", context, NK),
            labeled_expand(suite_id, secret, b"base_nonce", context, NN))


def aead_seal(key, nonce, aad, plaintext):
    return sodium.crypto_aead_chacha20poly1305_ietf_encrypt(plaintext, aad, nonce, key)


def aead_open(key, nonce, aad, ciphertext):
    """The plaintext, or None when the tag does not verify."""
    try:
        return sodium.crypto_aead_chacha20poly1305_ietf_decrypt(ciphertext, aad, nonce, key)
    except CryptoError:
        return None


def dhkem_x25519_decap(enc, sk_r):
    """RFC 9180 4.1 DHKEM(X25519, HKDF-SHA256): only for the RFC's own vector."""
    suite = b"KEM" + struct.pack(">H", KEM_DHKEM_X25519)
    pk_r = x25519_base(sk_r)
    dh = x25519(sk_r, enc)
    eae_prk = labeled_extract(suite, b"", b"eae_prk", dh)
    return labeled_expand(suite, eae_prk, b"shared_secret", enc + pk_r, 32)


XWING_SUITE = hpke_suite_id(KEM_XWING)


def seal_xwing_derand(pk, eseed, info, aad, plaintext):
    """SealBase with X-Wing (whose shared secret HPKE uses as is): (enc, ciphertext, trace)."""
    ss, enc = xwing_encapsulate_derand(pk, eseed)
    key, nonce = key_schedule_base(XWING_SUITE, ss, info)
    return enc, aead_seal(key, nonce, aad, plaintext), {"sharedSecret": ss, "key": key, "baseNonce": nonce}


def open_xwing(sk, enc, info, aad, ciphertext):
    """OpenBase with X-Wing: the plaintext, or None."""
    key, nonce = key_schedule_base(XWING_SUITE, xwing_decapsulate(enc, sk), info)
    return aead_open(key, nonce, aad, ciphertext)


# ---------------------------------------------------------------------------------------

def selftest(xwing_path, hpke_path):
    """X-Wing against the draft's vectors (key generation, derandomised encapsulation,
    decapsulation), HPKE against RFC 9180 A.2.1 (open), and an X-Wing HPKE round trip."""
    with open(xwing_path) as f:
        xwing = json.load(f)["vectors"]
    for v in xwing:
        seed, eseed = bytes.fromhex(v["seed"]), bytes.fromhex(v["eseed"])
        pk, ct, ss = (bytes.fromhex(v[k]) for k in ("public_key", "ciphertext", "shared_secret"))
        if xwing_public_key(seed) != pk:
            raise AssertionError("%s: public key" % v["name"])
        if xwing_encapsulate_derand(pk, eseed) != (ss, ct):
            raise AssertionError("%s: encapsulation" % v["name"])
        if xwing_decapsulate(ct, seed) != ss:
            raise AssertionError("%s: decapsulation" % v["name"])
    with open(hpke_path) as f:
        rfc = json.load(f)["vectors"]
    for v in rfc:
        get = {k: bytes.fromhex(v[k]) for k in ("info", "skRm", "pkRm", "enc", "aad", "pt", "ct")}
        if x25519_base(get["skRm"]) != get["pkRm"]:
            raise AssertionError("RFC 9180: pkRm")
        suite = hpke_suite_id(v["kem_id"], v["kdf_id"], v["aead_id"])
        key, nonce = key_schedule_base(suite, dhkem_x25519_decap(get["enc"], get["skRm"]), get["info"])
        if aead_open(key, nonce, get["aad"], get["ct"]) != get["pt"] or aead_seal(key, nonce, get["aad"], get["pt"]) != get["ct"]:
            raise AssertionError("RFC 9180: %s" % v["name"])
    seed = bytes(range(32))
    enc, ct, _ = seal_xwing_derand(xwing_public_key(seed), bytes(range(64)), b"info", b"aad", b"plaintext")
    if open_xwing(seed, enc, b"info", b"aad", ct) != b"plaintext" or open_xwing(seed, enc, b"info", b"other", ct) is not None:
        raise AssertionError("X-Wing HPKE round trip")
    return len(xwing), len(rfc)


def main(argv):
    if len(argv) == 3 and argv[0] == "selftest":
        try:
            xwing, rfc = selftest(argv[1], argv[2])
        except (AssertionError, KeyError, ValueError) as error:
            print("hpke.py: FAILED: %s" % error, file=sys.stderr)
            return 1
        print("hpke.py: X-Wing reproduces the draft's %d vectors; HPKE opens and seals RFC 9180's %d" % (xwing, rfc))
        return 0
    print("usage: hpke.py selftest XWING.json HPKE.json", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
