#!/usr/bin/env python3
"""Writes secretstream_pynacl.json: a known-answer fixture for libsodium's
crypto_secretstream_xchacha20poly1305, made with PyNaCl (its own bundled libsodium,
independent of the system libsodium that Valise links). libsodium 1.0.18 publishes no
secretstream test vectors, so this records one run: init_push picks a random header, which
the fixture keeps, so that decryption is reproducible. Run: python3 secretstream_pynacl.py
> secretstream_pynacl.json (in a venv with `pip install pynacl`)."""
import json
import nacl
from nacl import bindings as b

key = bytes(range(32))  # fixed key 00..1f
chunks = [
    (b"Note verbale, annex 1", b.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE),
    (b"", b.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE),
    (bytes(range(256)) * 4, b.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE),
    (b"end", b.crypto_secretstream_xchacha20poly1305_TAG_FINAL),
]
state = b.crypto_secretstream_xchacha20poly1305_state()
header = b.crypto_secretstream_xchacha20poly1305_init_push(state, key)
vectors = []
for index, (plaintext, tag) in enumerate(chunks):
    ciphertext = b.crypto_secretstream_xchacha20poly1305_push(state, plaintext, None, tag)
    vectors.append({"name": f"chunk {index}", "plaintext": plaintext.hex(), "tag": tag,
                    "ciphertext": ciphertext.hex()})

# Check the run with PyNaCl's own pull before writing it out.
pull = b.crypto_secretstream_xchacha20poly1305_state()
b.crypto_secretstream_xchacha20poly1305_init_pull(pull, header, key)
for vector in vectors:
    plaintext, tag = b.crypto_secretstream_xchacha20poly1305_pull(pull, bytes.fromhex(vector["ciphertext"]), None)
    assert plaintext.hex() == vector["plaintext"] and tag == vector["tag"]

print(json.dumps({
    "source": {
        "document": "libsodium crypto_secretstream_xchacha20poly1305, one recorded run (no official vectors exist for libsodium 1.0.18)",
        "generator": f"Tests/ValiseCryptoTests/Fixtures/secretstream_pynacl.py with PyNaCl {nacl.__version__} (bundled libsodium), additional data empty",
        "license": "computed values: no restriction",
    },
    "key": key.hex(),
    "header": header.hex(),
    "vectors": vectors,
}, indent=2))
