#!/usr/bin/env python3
"""Independent implementation of the Valise transport handshakes, written from
docs/PROTOCOL.md alone ("Transport": Noise_XKhfs_25519+MLKEM768_ChaChaPoly_BLAKE2b for
clients, Noise_KKhfs_... for relay links) to check that the document is byte-exact. It
shares no code with the Swift implementation: Noise's SymmetricState and the hfs tokens
are written here by hand.

Libraries: cryptography (X25519, ChaCha20-Poly1305), hashlib/hmac (BLAKE2b, HMAC-BLAKE2b),
kyber-py (ML-KEM-768, FIPS 203; its `_keygen_internal(d, z)` and `_encaps_internal(ek, m)`
make key generation and encapsulation deterministic from fixed seeds), PyNaCl only through
keystore.py.
    pip install cryptography kyber-py pynacl argon2-cffi

    handshake.py vectors OUT.json        writes the deterministic transcripts (XKhfs, KKhfs)
    handshake.py check FIXTURE.json      regenerates them and compares with FIXTURE
    handshake.py live HOST PORT --keystore FILE --passphrase-file P --relay-pub FILE
                                         handshakes as that device, says Hello and Ping
    handshake.py classical HOST PORT --relay-pub FILE
                                         offers the classical handshake (preamble version 1)
"""
import argparse, hashlib, hmac, json, os, socket, struct, sys

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives import serialization
from kyber_py.ml_kem import ML_KEM_768

HASHLEN = 64
TAG = 16
EK_LEN, CT_LEN = 1184, 1088
MAGIC = b"VALISE"
CLIENT_NAME = "Noise_XKhfs_25519+MLKEM768_ChaChaPoly_BLAKE2b"
LINK_NAME = "Noise_KKhfs_25519+MLKEM768_ChaChaPoly_BLAKE2b"
CLASSICAL_NAME = "Noise_XK_25519_ChaChaPoly_BLAKE2b"
# PROTOCOL.md "Transport": pre-messages (initiator's, responder's) and the messages.
PATTERNS = {
    CLIENT_NAME: ([], ["s"], [["e", "es", "e1"], ["e", "ee", "ekem1"], ["s", "se"]]),
    LINK_NAME: (["s"], ["s"], [["e", "es", "ss", "e1"], ["e", "ee", "se", "ekem1"]]),
    CLASSICAL_NAME: ([], ["s"], [["e", "es"], ["e", "ee"], ["s", "se"]]),
    # Only to replay the published classical vectors (replay_classical).
    "Noise_KK_25519_ChaChaPoly_BLAKE2b": (["s"], ["s"], [["e", "es", "ss"], ["e", "ee", "se"]]),
}


def preamble(channel, version):
    return MAGIC + bytes([channel, version])


CLIENT_PROLOGUE = b"valise/1" + preamble(1, 2)
LINK_PROLOGUE = b"valise/link/1" + preamble(2, 1)


def blake2b(data):
    return hashlib.blake2b(data, digest_size=HASHLEN).digest()


def hmac_blake2b(key, data):
    return hmac.new(key, data, hashlib.blake2b).digest()


def hkdf(ck, ikm, n):
    temp = hmac_blake2b(ck, ikm)
    out, prev = [], b""
    for i in range(1, n + 1):
        prev = hmac_blake2b(temp, prev + bytes([i]))
        out.append(prev)
    return out


def x25519_public(private):
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def dh(private, public):
    # cryptography refuses an all-zero result, as PROTOCOL.md asks.
    return X25519PrivateKey.from_private_bytes(private).exchange(X25519PublicKey.from_public_bytes(public))


class Cipher:
    def __init__(self, key=None):
        self.k, self.n = key, 0

    def encrypt(self, ad, plaintext):
        if self.k is None:
            return plaintext
        nonce = b"\x00\x00\x00\x00" + struct.pack("<Q", self.n)
        self.n += 1
        return ChaCha20Poly1305(self.k).encrypt(nonce, plaintext, ad)

    def decrypt(self, ad, ciphertext):
        if self.k is None:
            return ciphertext
        nonce = b"\x00\x00\x00\x00" + struct.pack("<Q", self.n)
        plaintext = ChaCha20Poly1305(self.k).decrypt(nonce, ciphertext, ad)
        self.n += 1
        return plaintext


class Symmetric:
    def __init__(self, name):
        raw = name.encode()
        self.h = raw.ljust(HASHLEN, b"\x00") if len(raw) <= HASHLEN else blake2b(raw)
        self.ck = self.h
        self.cipher = Cipher()

    def mix_hash(self, data):
        self.h = blake2b(self.h + data)

    def mix_key(self, ikm):
        self.ck, temp = hkdf(self.ck, ikm, 2)
        self.cipher = Cipher(temp[:32])

    def encrypt_and_hash(self, plaintext):
        c = self.cipher.encrypt(self.h, plaintext)
        self.mix_hash(c)
        return c

    def decrypt_and_hash(self, c):
        p = self.cipher.decrypt(self.h, c)
        self.mix_hash(c)
        return p

    def split(self):
        a, b = hkdf(self.ck, b"", 2)
        return Cipher(a[:32]), Cipher(b[:32])


class Handshake:
    """One side of a handshake. `e` is a fixed X25519 private key (or None: random),
    `kem_seed` the initiator's ML-KEM d‖z, `encaps_m` the responder's 32-byte m."""

    def __init__(self, name, initiator, prologue, s, rs=None, e=None, kem_seed=None, encaps_m=None):
        pre_i, pre_r, self.messages = PATTERNS[name]
        self.initiator, self.s, self.rs, self.fixed_e = initiator, s, rs, e
        self.kem_seed, self.encaps_m = kem_seed, encaps_m
        self.e = self.re = self.dk = self.rek = None
        self.index = 0
        self.sym = Symmetric(name)
        self.sym.mix_hash(prologue)
        for owner_is_initiator, tokens in ((True, pre_i), (False, pre_r)):
            for _ in tokens:  # only "s"
                mine = owner_is_initiator == initiator
                self.sym.mix_hash(x25519_public(s) if mine else rs)

    def _dh(self, token):
        i_eph, r_eph = token in ("ee", "es"), token in ("ee", "se")
        if self.initiator:
            mine, theirs = (self.e if i_eph else self.s), (self.re if r_eph else self.rs)
        else:
            mine, theirs = (self.e if r_eph else self.s), (self.re if i_eph else self.rs)
        self.sym.mix_key(dh(mine, theirs))

    def write(self, payload=b""):
        out = b""
        for token in self.messages[self.index]:
            if token == "e":
                self.e = self.fixed_e or os.urandom(32)
                pub = x25519_public(self.e)
                out += pub
                self.sym.mix_hash(pub)
            elif token == "s":
                out += self.sym.encrypt_and_hash(x25519_public(self.s))
            elif token == "e1":
                seed = self.kem_seed or os.urandom(64)
                ek, self.dk = ML_KEM_768._keygen_internal(seed[:32], seed[32:])
                out += self.sym.encrypt_and_hash(ek)
            elif token == "ekem1":
                ss, ct = ML_KEM_768._encaps_internal(self.rek, self.encaps_m or os.urandom(32))
                out += self.sym.encrypt_and_hash(ct)
                self.sym.mix_key(ss)
            else:
                self._dh(token)
        out += self.sym.encrypt_and_hash(payload)
        self.index += 1
        return out

    def read(self, message):
        rest = message

        def take(n):
            nonlocal rest
            if len(rest) < n:
                raise ValueError("handshake message too short")
            field, rest = rest[:n], rest[n:]
            return field

        tag = lambda: TAG if self.sym.cipher.k is not None else 0
        for token in self.messages[self.index]:
            if token == "e":
                self.re = take(32)
                self.sym.mix_hash(self.re)
            elif token == "s":
                self.rs = self.sym.decrypt_and_hash(take(32 + tag()))
            elif token == "e1":
                self.rek = self.sym.decrypt_and_hash(take(EK_LEN + tag()))
            elif token == "ekem1":
                ct = self.sym.decrypt_and_hash(take(CT_LEN + tag()))
                self.sym.mix_key(ML_KEM_768.decaps(self.dk, ct))
                self.dk = None
            else:
                self._dh(token)
        payload = self.sym.decrypt_and_hash(rest)
        self.index += 1
        return payload

    @property
    def complete(self):
        return self.index == len(self.messages)

    def transport(self):
        first, second = self.sym.split()
        return (first, second) if self.initiator else (second, first)  # (send, receive)


# --- deterministic transcripts ---------------------------------------------------------

def seed_bytes(label, n):
    """Fixed, documented seeds: BLAKE2b-n of an ASCII label."""
    return hashlib.blake2b(label.encode(), digest_size=n).digest()


def transcript(name, prologue):
    tag = "valise interop " + name + " "
    keys = {
        "initiatorStatic": seed_bytes(tag + "initiator static", 32),
        "responderStatic": seed_bytes(tag + "responder static", 32),
        "initiatorEphemeral": seed_bytes(tag + "initiator ephemeral", 32),
        "responderEphemeral": seed_bytes(tag + "responder ephemeral", 32),
        "initiatorKEMSeed": seed_bytes(tag + "initiator ML-KEM d", 32) + seed_bytes(tag + "initiator ML-KEM z", 32),
        "responderEncapsulationRandomness": seed_bytes(tag + "responder ML-KEM m", 32),
    }
    i_pub, r_pub = x25519_public(keys["initiatorStatic"]), x25519_public(keys["responderStatic"])
    link = PATTERNS[name][0] == ["s"]
    init = Handshake(name, True, prologue, keys["initiatorStatic"], rs=r_pub, e=keys["initiatorEphemeral"],
                     kem_seed=keys["initiatorKEMSeed"])
    resp = Handshake(name, False, prologue, keys["responderStatic"], rs=i_pub if link else None,
                     e=keys["responderEphemeral"], encaps_m=keys["responderEncapsulationRandomness"])
    messages, writer, reader = [], init, resp
    while not init.complete:
        m = writer.write(b"")
        if reader.read(m) != b"":
            raise SystemExit("a non-empty payload")
        messages.append(m)
        writer, reader = reader, writer
    assert init.sym.h == resp.sym.h
    i_send, i_recv = init.transport()
    r_send, r_recv = resp.transport()
    to_resp, to_init = b"\x00cable 1 to the relay", b"\x00cable 2 to the mission"
    c1, c2 = i_send.encrypt(b"", to_resp), r_send.encrypt(b"", to_init)
    assert r_recv.decrypt(b"", c1) == to_resp and i_recv.decrypt(b"", c2) == to_init
    out = {"protocol": name, "prologue": prologue.hex()}
    out.update({k: v.hex() for k, v in keys.items()})
    out.update({
        "initiatorStaticPublic": i_pub.hex(), "responderStaticPublic": r_pub.hex(),
        "messages": [m.hex() for m in messages], "messageLengths": [len(m) for m in messages],
        "handshakeHash": init.sym.h.hex(),
        "initiatorToResponderKey": i_send.k.hex(), "responderToInitiatorKey": r_send.k.hex(),
        "initiatorToResponderPlaintext": to_resp.hex(), "initiatorToResponderCiphertext": c1.hex(),
        "responderToInitiatorPlaintext": to_init.hex(), "responderToInitiatorCiphertext": c2.hex(),
    })
    return out


def replay_classical(path):
    """The hand-written Noise core first replays a published classical vector (cacophony's
    XK and KK, no psk) byte for byte, so that a disagreement on the hybrid transcripts
    points at the hfs tokens, not at the core."""
    count = 0
    for v in json.load(open(path))["vectors"]:
        name = v["protocol_name"]
        if name not in PATTERNS:
            continue
        link = PATTERNS[name][0] == ["s"]
        fx = lambda k: bytes.fromhex(v[k]) if k in v else None
        init = Handshake(name, True, fx("init_prologue"), fx("init_static"), rs=fx("init_remote_static"),
                         e=fx("init_ephemeral"))
        resp = Handshake(name, False, fx("resp_prologue"), fx("resp_static"),
                         rs=fx("resp_remote_static") if link else None, e=fx("resp_ephemeral"))
        writer, reader, transport = init, resp, None
        for m in v["messages"]:
            payload, expected = bytes.fromhex(m["payload"]), bytes.fromhex(m["ciphertext"])
            if transport is None:
                got = writer.write(payload)
                if reader.read(got) != payload:
                    raise SystemExit("%s: payload lost" % name)
                if writer.complete:
                    transport = {id(init): init.transport()[0], id(resp): resp.transport()[0]}
            else:
                got = transport[id(writer)].encrypt(b"", payload)
            if got != expected:
                raise SystemExit("%s: a message differs from %s" % (name, path))
            writer, reader = reader, writer
        if v.get("handshake_hash") and not init.sym.h.startswith(bytes.fromhex(v["handshake_hash"])):
            raise SystemExit("%s: the handshake hash differs" % name)
        count += 1
    return count


def vectors():
    return {
        "source": "scripts/interop/handshake.py vectors (independent Python: cryptography, hashlib, kyber-py); "
                  "seeds are BLAKE2b of the labels 'valise interop <protocol> <role> ...'",
        "handshakes": [transcript(CLIENT_NAME, CLIENT_PROLOGUE), transcript(LINK_NAME, LINK_PROLOGUE)],
    }


# --- live: a device talking to a running valised ---------------------------------------

def frame(data):
    return struct.pack(">H", len(data)) + data


def read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise SystemExit("the relay closed the connection after %d of %d bytes" % (len(data), n))
        data += chunk
    return data


def read_frame(sock):
    (length,) = struct.unpack(">H", read_exact(sock, 2))
    return read_exact(sock, length)


def varint(n):
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def field(number, wire, value):
    key = varint(number << 3 | wire)
    return key + (varint(value) if wire == 0 else varint(len(value)) + value)


def parse(data):
    """A protobuf message as {field: [values]} (varints as ints, lengths and fixed-width values as bytes)."""
    out, at = {}, 0

    def read_varint():
        nonlocal at
        shift = value = 0
        while True:
            b = data[at]
            at += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return value
    while at < len(data):
        key = read_varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            value = read_varint()
        elif wire == 2:
            n = read_varint()
            value, at = data[at:at + n], at + n
        elif wire == 1:  # fixed64 (a double such as Welcome.sends_per_second): kept as bytes
            value, at = data[at:at + 8], at + 8
        elif wire == 5:  # fixed32
            value, at = data[at:at + 4], at + 4
        else:
            raise SystemExit("unexpected wire type %d" % wire)
        out.setdefault(number, []).append(value)
    return out


def relay_noise_key(path):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import armor
    _, data = armor.dearmor(open(path, "rb").read(armor.MAX_ARMORED + 1), {b"RELAY PUBLIC KEY"})
    if data[:9] != b"VALISERP\x01":
        raise SystemExit("%s is not a relay public-key file" % path)
    return data[9:41]


def device_transport_key(path, passphrase_file):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import keystore
    payload, _ = keystore.open_container(open(path, "rb").read(), keystore.read_passphrase(passphrase_file))
    return keystore.parse_device_payload(payload)["x_priv"]


def cmd_live(a):
    key, rs = device_transport_key(a.keystore, a.passphrase_file), relay_noise_key(a.relay_pub)
    hs = Handshake(CLIENT_NAME, True, CLIENT_PROLOGUE, key, rs=rs)
    with socket.create_connection((a.host, a.port), timeout=10) as sock:
        first = hs.write()
        sock.sendall(preamble(1, 2) + frame(first))
        second = read_frame(sock)
        hs.read(second)
        third = hs.write()
        sock.sendall(frame(third))
        send, receive = hs.transport()

        def request(body_field, body):
            request.id += 1
            message = field(1, 0, request.id) + field(body_field, 2, body)
            sock.sendall(frame(send.encrypt(b"", b"\x00" + message)))
            plaintext = receive.decrypt(b"", read_frame(sock))
            if plaintext[:1] != b"\x00":
                raise SystemExit("a fragmented answer")
            answer = parse(plaintext[1:])
            if answer.get(1, [0])[0] != request.id:
                raise SystemExit("the answer carries request id %s, not %d" % (answer.get(1), request.id))
            return answer
        request.id = 0
        hello = field(1, 0, a.hello_version) + field(2, 2, b"handshake.py")
        welcome = request(2, hello)
        if 2 not in welcome:
            error = parse(welcome[6][0]) if 6 in welcome else {}
            raise SystemExit("no Welcome: %s" % ({k: v for k, v in error.items()} or welcome))
        data = os.urandom(16)
        pong = request(5, field(1, 2, data))
        if 5 not in pong or parse(pong[5][0]).get(1, [b""])[0] != data:
            raise SystemExit("no Pong with the Ping's data: %s" % pong)
    print(json.dumps({"frames": [len(first), len(second), len(third)], "role": parse(welcome[2][0]).get(5, [0])[0],
                      "handshakeHash": hs.sym.h.hex(), "pong": True}))


def cmd_classical(a):
    rs = relay_noise_key(a.relay_pub)
    hs = Handshake(CLASSICAL_NAME, True, b"valise/1" + preamble(1, 1), os.urandom(32), rs=rs)
    with socket.create_connection((a.host, a.port), timeout=10) as sock:
        sock.sendall(preamble(1, 1) + frame(hs.write()))
        answer = b""
        while True:
            chunk = sock.recv(64)
            if not chunk:
                break
            answer += chunk
    print(json.dumps({"answer": answer.decode("latin-1"), "hex": answer.hex()}))
    if answer != MAGIC + b"V\x02":
        raise SystemExit("the relay answered %r, not VALISE V 2" % answer)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    v = sub.add_parser("vectors")
    v.add_argument("out")
    c = sub.add_parser("check")
    c.add_argument("fixture")
    live = sub.add_parser("live")
    classical = sub.add_parser("classical")
    for q in (live, classical):
        q.add_argument("host")
        q.add_argument("port", type=int)
        q.add_argument("--relay-pub", required=True)
    live.add_argument("--keystore", required=True)
    live.add_argument("--passphrase-file", required=True)
    live.add_argument("--hello-version", type=int, default=3)
    a = p.parse_args()
    if a.command == "vectors":
        with open(a.out, "w") as f:
            json.dump(vectors(), f, indent=2)
            f.write("\n")
    elif a.command == "check":
        fixtures = os.path.dirname(a.fixture)
        replayed = sum(replay_classical(os.path.join(fixtures, "cacophony_%s_25519_ChaChaPoly_BLAKE2b.json" % p))
                       for p in ("XK", "KK"))
        if replayed != 2:
            raise SystemExit("expected to replay cacophony's XK and KK vectors, replayed %d" % replayed)
        if json.load(open(a.fixture)) != vectors():
            raise SystemExit("%s differs from what handshake.py computes" % a.fixture)
        print("the transcripts in %s are reproduced" % a.fixture)
    elif a.command == "live":
        cmd_live(a)
    else:
        cmd_classical(a)


if __name__ == "__main__":
    main()
