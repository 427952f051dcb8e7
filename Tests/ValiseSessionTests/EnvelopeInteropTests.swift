import Foundation
import Testing
import ValiseCrypto
@testable import ValiseSession

/// Message contents and sealed envelopes made by an independent implementation:
/// scripts/interop/envelope.py, written from docs/PROTOCOL.md ("Message contents", "Sealed
/// envelopes") alone on PyNaCl (crypto_box_seal, sodium_pad), carrying session messages made
/// by scripts/interop/session.py (Fixtures/SOURCE.md). Valise must open every envelope to
/// the same fields, pad the same contents to the same bytes, encode the same contents to the
/// same bytes, send the same session messages from the same keys, and refuse what the
/// document says to refuse. The other way round, Fixtures/envelope-sealed-by-valise.json
/// holds envelopes Valise sealed from the same inputs, which `envelope.py check` opens.
struct EnvelopeFixture: @unchecked Sendable {
    let object: [String: Any]

    static let shared: EnvelopeFixture = {
        EnvelopeFixture(object: load("envelope-vectors") as? [String: Any] ?? [:])
    }()

    static func load(_ name: String) -> Any {
        guard let url = Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures"),
              let data = try? Data(contentsOf: url),
              let object = try? JSONSerialization.jsonObject(with: data) else { fatalError("cannot load \(name).json") }
        return object
    }

    func key(_ name: String) -> [UInt8] {
        guard let keys = object["keys"] as? [String: String], let text = keys[name], let bytes = Hex.decode(text) else {
            fatalError("no key \(name)")
        }
        return bytes
    }
    func keyList(_ name: String) -> [[UInt8]] { (object[name] as? [String] ?? []).map { Hex.decode($0)! } }
    func list(_ name: String) -> [[String: Any]] { object[name] as? [[String: Any]] ?? [] }

    func signingKey(_ who: String) throws -> SigningKey { try SigningKey(seed: SecretBytes(copying: key(who + "Seed"))) }
    func identity(_ who: String) throws -> SigningPublicKey { try SigningPublicKey(bytes: key(who + "IdentityKey")) }
    func envelopeKey(_ who: String) throws -> AgreementPrivateKey { try privateKey(key(who + "EnvelopeKey")) }
}

private func privateKey(_ bytes: [UInt8]) throws -> AgreementPrivateKey {
    try AgreementPrivateKey(rawRepresentation: SecretBytes(copying: bytes))
}

private func hex(_ fields: [String: Any], _ key: String) -> [UInt8] {
    guard let text = fields[key] as? String, let bytes = Hex.decode(text) else { fatalError("no hex field \(key)") }
    return bytes
}

/// One message contents: what it holds, and its bytes.
struct ContentVector: Sendable, CustomTestStringConvertible {
    let content: MessageContent
    let encoded: [UInt8]
    var testDescription: String {
        switch content {
        case .text(let text): "text of \(text.utf8.count) bytes"
        case .receipt(let ids): "receipt of \(ids.count) ids"
        }
    }

    static let all: [ContentVector] = EnvelopeFixture.shared.list("messageContents").map { fields in
        let content: MessageContent = fields["kind"] as? String == "text"
            ? .text(fields["text"] as! String)
            : .receipt((fields["ids"] as! [String]).map { Hex.decode($0)! })
        return ContentVector(content: content, encoded: hex(fields, "encoded"))
    }
}

/// Bytes that must be refused, and why.
struct RefusedVector: Sendable, CustomTestStringConvertible {
    let why: String
    let bytes: [UInt8]
    var testDescription: String { why }

    static let contents: [RefusedVector] = EnvelopeFixture.shared.list("invalidMessageContents").map {
        RefusedVector(why: $0["why"] as! String, bytes: hex($0, "encoded"))
    }
    static let envelopes: [RefusedVector] = EnvelopeFixture.shared.list("invalidEnvelopes").map {
        RefusedVector(why: $0["why"] as! String, bytes: hex($0, "sealed"))
    }
}

/// One sealed envelope and every field it must open to.
struct EnvelopeVector: Sendable, CustomTestStringConvertible {
    let name: String
    let from: String
    let to: String
    let id: [UInt8]
    let recipient: [UInt8]
    let precedence: UInt8
    let ttlClass: UInt8
    let sender: [UInt8]
    let senderSequence: UInt64
    let senderHead: [UInt8]
    let senderCheckpoint: [UInt8]?
    let timestamp: UInt64
    let sessionMessage: [UInt8]
    let sessionMessageKind: UInt8
    let messageContents: [UInt8]
    let contents: [UInt8]
    let bucket: Int
    let padded: [UInt8]
    let sealed: [UInt8]
    var testDescription: String { name }

    static let all: [EnvelopeVector] = EnvelopeFixture.shared.list("envelopes").map { f in
        EnvelopeVector(
            name: f["name"] as! String, from: f["from"] as! String, to: f["to"] as! String, id: hex(f, "id"),
            recipient: hex(f, "recipient"), precedence: UInt8(f["precedence"] as! Int), ttlClass: UInt8(f["ttlClass"] as! Int),
            sender: hex(f, "sender"), senderSequence: UInt64(f["senderSequence"] as! Int), senderHead: hex(f, "senderHead"),
            senderCheckpoint: f["senderCheckpoint"] is String ? hex(f, "senderCheckpoint") : nil,
            timestamp: UInt64(f["timestamp"] as! Int), sessionMessage: hex(f, "sessionMessage"),
            sessionMessageKind: UInt8(f["sessionMessageKind"] as! Int), messageContents: hex(f, "messageContents"),
            contents: hex(f, "contents"), bucket: f["bucket"] as! Int, padded: hex(f, "padded"), sealed: hex(f, "sealed"))
    }

    /// The envelope as Valise would build it from the same inputs.
    func envelope() throws -> SealedEnvelope {
        SealedEnvelope(
            id: id, recipient: try SigningPublicKey(bytes: recipient), precedence: precedence, ttlClass: ttlClass,
            sender: try SigningPublicKey(bytes: sender), senderHead: .init(sequence: senderSequence, hash: senderHead),
            senderCheckpoint: senderCheckpoint, timestamp: timestamp, sessionMessage: sessionMessage)
    }

    func open(_ sealed: [UInt8], precedence: UInt8? = nil, ttlClass: UInt8? = nil) throws -> SealedEnvelope {
        let fixture = EnvelopeFixture.shared
        return try SealedEnvelope.open(
            sealed, with: fixture.envelopeKey(to), expectedID: id, recipient: fixture.identity(to),
            precedence: precedence ?? self.precedence, ttlClass: ttlClass ?? self.ttlClass)
    }
}

@Suite("Message contents and sealed envelopes against an independent implementation")
struct EnvelopeInteropTests {
    @Test("message contents: the independent bytes decode to the same content, and Valise encodes it to the same bytes", arguments: ContentVector.all)
    func contents(vector: ContentVector) throws {
        #expect(try MessageContent(decoding: vector.encoded) == vector.content)
        #expect(Hex.encode(vector.content.encoded) == Hex.encode(vector.encoded))
    }

    @Test("message contents: what PROTOCOL.md refuses, Valise refuses", arguments: RefusedVector.contents)
    func refusedContents(vector: RefusedVector) {
        #expect(throws: SessionError(code: "bad-contents", message: "")) { try MessageContent(decoding: vector.bytes) }
    }

    @Test("sealed envelopes: each opens to every field, from the same contents padded to the same bytes in the same bucket", arguments: EnvelopeVector.all)
    func open(vector: EnvelopeVector) throws {
        let expected = try vector.envelope()
        let opened = try vector.open(vector.sealed)
        #expect(Hex.encode(opened.id) == Hex.encode(vector.id))
        #expect(opened.recipient.bytes == vector.recipient)
        #expect(opened.precedence == vector.precedence)
        #expect(opened.ttlClass == vector.ttlClass)
        #expect(opened.sender.bytes == vector.sender)
        #expect(opened.senderHead.sequence == vector.senderSequence)
        #expect(opened.senderHead.hash == vector.senderHead)
        #expect(opened.senderCheckpoint == vector.senderCheckpoint)
        #expect(opened.timestamp == vector.timestamp)
        #expect(Hex.encode(opened.sessionMessage) == Hex.encode(vector.sessionMessage))
        #expect(opened == expected)
        #expect(vector.sessionMessage.count >= 2 && vector.sessionMessage[1] == vector.sessionMessageKind)
        #expect(Session.isInitial(vector.sessionMessage) == (vector.sessionMessageKind == 1))

        // What is deterministic before sealing: the contents, the bucket and the padding.
        #expect(Hex.encode(expected.encoded) == Hex.encode(vector.contents))
        #expect(SealedEnvelope.bucket(forSessionMessageOf: vector.sessionMessage.count, withCheckpoint: vector.senderCheckpoint != nil) == vector.bucket)
        #expect(vector.sealed.count == vector.bucket)
        #expect(Hex.encode(Padding.pad(expected.encoded, toMultipleOf: vector.bucket - SealedBox.overheadByteCount)) == Hex.encode(vector.padded))

        // The message contents the session message carries.
        let content = try MessageContent(decoding: vector.messageContents)
        #expect(Hex.encode(content.encoded) == Hex.encode(vector.messageContents))

        // The relay's labels: a shorter TTL class is accepted (a relay may lower it), the
        // same precedence and TTL class only otherwise.
        if vector.ttlClass > 1 { #expect(try vector.open(vector.sealed, ttlClass: vector.ttlClass - 1) == expected) }
        if vector.ttlClass < 4 {
            #expect(throws: SessionError(code: "label-mismatch", message: "")) { try vector.open(vector.sealed, ttlClass: vector.ttlClass + 1) }
        }
        #expect(throws: SessionError(code: "label-mismatch", message: "")) { try vector.open(vector.sealed, precedence: (vector.precedence + 1) % 4) }
    }

    @Test("sealed envelopes: the envelopes Valise sealed for envelope.py (Fixtures/envelope-sealed-by-valise.json) are sealed from the same inputs")
    func sealedByValise() throws {
        let listed = (EnvelopeFixture.load("envelope-sealed-by-valise") as? [String: Any])?["envelopes"] as? [[String: Any]] ?? []
        let vectors = Dictionary(uniqueKeysWithValues: EnvelopeVector.all.map { ($0.name, $0) })
        #expect(Set(listed.map { $0["name"] as? String ?? "" }) == Set(vectors.keys))
        for item in listed {
            let vector = try #require(vectors[item["name"] as? String ?? ""])
            let sealed = hex(item, "sealed")
            #expect(sealed.count == vector.bucket)
            #expect(try vector.open(sealed) == vector.envelope())
        }
    }

    @Test("sealed envelopes: each envelope PROTOCOL.md says to refuse once opened (version, lengths, values, padding) is refused", arguments: RefusedVector.envelopes)
    func refusedEnvelope(vector: RefusedVector) throws {
        let fixture = EnvelopeFixture.shared
        guard let to = fixture.object["invalidEnvelopesTo"] as? [String: Any], let who = to["recipient"] as? String else {
            Issue.record("no invalidEnvelopesTo")
            return
        }
        #expect(throws: SessionError.self) {
            try SealedEnvelope.open(
                vector.bytes, with: fixture.envelopeKey(who), expectedID: hex(to, "id"), recipient: fixture.identity(who),
                precedence: UInt8(to["precedence"] as! Int), ttlClass: UInt8(to["ttlClass"] as! Int))
        }
    }

    @Test("the session messages the envelopes carry are what Valise's sessions send from the same keys, and decrypt to the message contents")
    func sessionMessages() throws {
        let fixture = EnvelopeFixture.shared
        let alice = try fixture.signingKey("alice")
        let bob = try fixture.signingKey("bob")
        let signedPrekey = try privateKey(fixture.key("bobSignedPrekey"))
        let oneTimePrekey = try privateKey(fixture.key("bobOneTimePrekey"))
        #expect(signedPrekey.publicKey.bytes == fixture.key("bobSignedPrekeyPublic"))
        #expect(oneTimePrekey.publicKey.bytes == fixture.key("bobOneTimePrekeyPublic"))
        #expect(try fixture.envelopeKey("alice").publicKey.bytes == fixture.key("aliceEnvelopeKeyPublic"))
        #expect(try fixture.envelopeKey("bob").publicKey.bytes == fixture.key("bobEnvelopeKeyPublic"))
        var aliceKeys = try fixture.keyList("aliceRatchetKeys").map(privateKey)
        var bobKeys = try fixture.keyList("bobRatchetKeys").map(privateKey)

        // These vectors predate PQXDH (session format 1): they need regenerating with a KEM
        // prekey; until then this KEM prekey only lets the test compile.
        let kemPrekey = MLKEM1024PrivateKey()
        let bundle = PQXDH.PrekeyBundle(
            identityKey: bob.publicKey, signedPrekey: signedPrekey.publicKey,
            signedPrekeySignature: PQXDH.signPrekey(signedPrekey.publicKey, with: bob), oneTimePrekey: oneTimePrekey.publicKey,
            kemPrekey: PQXDH.KEMPrekey(key: kemPrekey.publicKey, kind: .oneTime, signedBy: bob))
        var aliceSession = try Session.initiate(
            identity: alice, bundle: bundle, ephemeral: privateKey(fixture.key("aliceEphemeral")), ratchetKey: aliceKeys.removeFirst())
        var bobSession: Session?
        let prekeys = Session.Prekeys(
            signedPrekey: { $0 == signedPrekey.publicKey ? signedPrekey : nil },
            oneTimePrekey: { $0 == oneTimePrekey.publicKey ? oneTimePrekey : nil },
            kemPrekey: { $0 == PQXDH.kemPrekeyID(kemPrekey.publicKey) ? (kemPrekey, .oneTime) : nil },
            seenBefore: { _ in false })

        for vector in EnvelopeVector.all {
            if vector.from == "alice" {
                let sent = try aliceSession.encrypt(vector.messageContents)
                #expect(Hex.encode(sent) == Hex.encode(vector.sessionMessage), "\(vector.name)")
                if var session = bobSession {
                    #expect(try session.decrypt(vector.sessionMessage, newRatchetKey: { bobKeys.removeFirst() }) == vector.messageContents)
                    bobSession = session
                } else {
                    let accepted = try Session.accept(vector.sessionMessage, identity: bob, prekeys: prekeys, newRatchetKey: { bobKeys.removeFirst() })
                    #expect(accepted.plaintext == vector.messageContents)
                    #expect(accepted.usedOneTimePrekey == oneTimePrekey.publicKey)
                    #expect(Hex.encode(accepted.session.initialHeader.encoded) == Hex.encode(fixture.key("initialHeader")))
                    bobSession = accepted.session
                }
            } else {
                var session = try #require(bobSession)
                let sent = try session.encrypt(vector.messageContents)
                bobSession = session
                #expect(Hex.encode(sent) == Hex.encode(vector.sessionMessage), "\(vector.name)")
                #expect(try aliceSession.decrypt(vector.sessionMessage, newRatchetKey: { aliceKeys.removeFirst() }) == vector.messageContents)
            }
        }
        #expect(aliceKeys.isEmpty && bobKeys.isEmpty)
    }

    /// Writes Fixtures/envelope-sealed-by-valise.json: off unless VALISE_WRITE_SEALED_ENVELOPES
    /// names the file to write (see Fixtures/SOURCE.md).
    @Test("write the envelopes Valise seals from the vectors' inputs, for envelope.py",
          .enabled(if: ProcessInfo.processInfo.environment["VALISE_WRITE_SEALED_ENVELOPES"] != nil))
    func writeSealedByValise() throws {
        let path = try #require(ProcessInfo.processInfo.environment["VALISE_WRITE_SEALED_ENVELOPES"])
        let fixture = EnvelopeFixture.shared
        var envelopes: [[String: String]] = []
        for vector in EnvelopeVector.all {
            let sealed = try vector.envelope().sealed(to: fixture.envelopeKey(vector.to).publicKey)
            #expect(try vector.open(sealed) == vector.envelope())
            envelopes.append(["name": vector.name, "sealed": Hex.encode(sealed)])
        }
        let document: [String: Any] = [
            "source": "Tests/ValiseSessionTests/EnvelopeInteropTests.swift (writeSealedByValise): SealedEnvelope.sealed(to:) "
                + "of Valise, from the inputs of each envelope of envelope-vectors.json (same name), to the recipient's envelope key. "
                + "`scripts/interop/envelope.py check envelope-vectors.json envelope-sealed-by-valise.json` opens them.",
            "envelopes": envelopes,
        ]
        let data = try JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        try (data + Data("\n".utf8)).write(to: URL(fileURLWithPath: path))
    }
}
