import Foundation
import Testing
import ValiseCrypto
@testable import ValiseSession

/// Message contents and sealed envelopes made by an independent implementation:
/// scripts/interop/envelope.py, written from docs/PROTOCOL.md ("Message contents", "Sealed
/// envelopes") alone, with HPKE and X-Wing written by hand in scripts/interop/hpke.py on
/// kyber-py and PyNaCl (Fixtures/SOURCE.md). Its encapsulations are deterministic (X-Wing's
/// EncapsulateDerand from a fixed eseed), so every sealed byte is a known answer; swift-crypto
/// seals only with fresh randomness, so Valise replays them in the opening direction: it must
/// open every envelope to the same fields, pad the same contents to the same bytes, encode the
/// same contents to the same bytes, and refuse what the document says to refuse, relabelled
/// envelopes included. The other way round, Fixtures/envelope-sealed-by-valise.json holds
/// envelopes Valise sealed from the same inputs, which `envelope.py check` opens.
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
    func list(_ name: String) -> [[String: Any]] { object[name] as? [[String: Any]] ?? [] }

    func signingKey(_ who: String) throws -> SigningKey { try SigningKey(seed: SecretBytes(copying: key(who + "Seed"))) }
    func identity(_ who: String) throws -> SigningPublicKey { try SigningPublicKey(bytes: key(who + "IdentityKey")) }
    func envelopeKey(_ who: String) throws -> XWingPrivateKey { try XWingPrivateKey(seed: SecretBytes(copying: key(who + "EnvelopeSeed"))) }
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
        case .message(let message): "message of \(message.text.utf8.count) bytes with \(message.attachments.count) attachments"
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

/// Labels a relay might deliver the first envelope under instead of its own.
struct RelabelledVector: Sendable, CustomTestStringConvertible {
    let why: String
    let labels: SealedEnvelope.Labels
    var testDescription: String { why }

    static let all: [RelabelledVector] = EnvelopeFixture.shared.list("relabelledEnvelopes").map { f in
        RelabelledVector(why: f["why"] as! String, labels: SealedEnvelope.Labels(
            mailbox: f["mailbox"] as! String, id: hex(f, "id"), precedence: UInt8(f["precedence"] as! Int), ttlClass: UInt8(f["ttlClass"] as! Int)))
    }
}

/// One sealed envelope and every field it must open to.
struct EnvelopeVector: Sendable, CustomTestStringConvertible {
    let name: String
    let from: String
    let to: String
    let mailbox: String
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
    let contents: [UInt8]
    let bucket: Int
    let padded: [UInt8]
    let labels: [UInt8]
    let sealed: [UInt8]
    var testDescription: String { name }

    static let all: [EnvelopeVector] = EnvelopeFixture.shared.list("envelopes").map { f in
        EnvelopeVector(
            name: f["name"] as! String, from: f["from"] as! String, to: f["to"] as! String, mailbox: f["mailbox"] as! String, id: hex(f, "id"),
            recipient: hex(f, "recipient"), precedence: UInt8(f["precedence"] as! Int), ttlClass: UInt8(f["ttlClass"] as! Int),
            sender: hex(f, "sender"), senderSequence: UInt64(f["senderSequence"] as! Int), senderHead: hex(f, "senderHead"),
            senderCheckpoint: f["senderCheckpoint"] is String ? hex(f, "senderCheckpoint") : nil,
            timestamp: UInt64(f["timestamp"] as! Int), sessionMessage: hex(f, "sessionMessage"),
            contents: hex(f, "contents"), bucket: f["bucket"] as! Int, padded: hex(f, "padded"), labels: hex(f, "labels"), sealed: hex(f, "sealed"))
    }

    /// The envelope as Valise would build it from the same inputs.
    func envelope() throws -> SealedEnvelope {
        SealedEnvelope(
            id: id, recipient: try SigningPublicKey(bytes: recipient), precedence: precedence, ttlClass: ttlClass,
            sender: try SigningPublicKey(bytes: sender), senderHead: .init(sequence: senderSequence, hash: senderHead),
            senderCheckpoint: senderCheckpoint, timestamp: timestamp, sessionMessage: sessionMessage)
    }

    var ownLabels: SealedEnvelope.Labels { .init(mailbox: mailbox, id: id, precedence: precedence, ttlClass: ttlClass) }

    func open(_ sealed: [UInt8], labels: SealedEnvelope.Labels? = nil, applied: UInt8? = nil) throws -> SealedEnvelope {
        let fixture = EnvelopeFixture.shared
        return try SealedEnvelope.open(
            sealed, with: fixture.envelopeKey(to), labels: labels ?? ownLabels, appliedTTLClass: applied ?? ttlClass,
            recipients: [fixture.identity(to)])
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

        // What is deterministic before sealing: the contents, the labels, the bucket and the padding.
        #expect(Hex.encode(expected.encoded) == Hex.encode(vector.contents))
        #expect(expected.labels(mailbox: vector.mailbox).associatedData == vector.labels)
        #expect(SealedEnvelope.bucket(forSessionMessageOf: vector.sessionMessage.count, withCheckpoint: vector.senderCheckpoint != nil) == vector.bucket)
        #expect(vector.sealed.count == vector.bucket)
        #expect(Hex.encode(Padding.pad(expected.encoded, toMultipleOf: vector.bucket - SealedEnvelope.overheadByteCount)) == Hex.encode(vector.padded))
        // The HPKE layer alone, through ValiseCrypto: the plaintext is exactly the padded contents.
        let split = HPKEXWing.encapsulatedKeyByteCount
        let plaintext = try HPKEXWing.open(
            Array(vector.sealed[split...]), encapsulatedKey: Array(vector.sealed[..<split]), with: EnvelopeFixture.shared.envelopeKey(vector.to),
            info: SealedEnvelope.info, aad: vector.labels)
        #expect(Hex.encode(plaintext) == Hex.encode(vector.padded))

        // The class the relay applied: shorter than the sender's is accepted, longer refused.
        if vector.ttlClass > 1 { #expect(try vector.open(vector.sealed, applied: vector.ttlClass - 1) == expected) }
        if vector.ttlClass < 4 {
            #expect(throws: SessionError(code: "ttl-lengthened", message: "")) { try vector.open(vector.sealed, applied: vector.ttlClass + 1) }
        }
        // The recipient's envelope key is the X-Wing key of the listed public key.
        #expect(try EnvelopeFixture.shared.envelopeKey(vector.to).publicKey.bytes == EnvelopeFixture.shared.key(vector.to + "EnvelopeKeyPublic"))
    }

    @Test("sealed envelopes: under any other labels (a relay relabelling or re-routing it) the first envelope does not open", arguments: RelabelledVector.all)
    func relabelled(vector: RelabelledVector) throws {
        let first = try #require(EnvelopeVector.all.first)
        #expect(throws: SessionError(code: "unsealable", message: "")) {
            try first.open(first.sealed, labels: vector.labels, applied: min(vector.labels.ttlClass, first.ttlClass))
        }
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

    @Test("sealed envelopes: each envelope PROTOCOL.md says to refuse once opened (version, lengths, values, labels, padding) is refused", arguments: RefusedVector.envelopes)
    func refusedEnvelope(vector: RefusedVector) throws {
        let fixture = EnvelopeFixture.shared
        guard let to = fixture.object["invalidEnvelopesTo"] as? [String: Any], let who = to["recipient"] as? String else {
            Issue.record("no invalidEnvelopesTo")
            return
        }
        let ttlClass = UInt8(to["ttlClass"] as! Int)
        let labels = SealedEnvelope.Labels(
            mailbox: to["mailbox"] as! String, id: hex(to, "id"), precedence: UInt8(to["precedence"] as! Int), ttlClass: ttlClass)
        let error = #expect(throws: SessionError.self) {
            try SealedEnvelope.open(vector.bytes, with: fixture.envelopeKey(who), labels: labels, appliedTTLClass: ttlClass, recipients: [fixture.identity(who)])
        }
        // Each opens (the seal is good) and is then refused for what is inside.
        #expect(error?.code != "unsealable" || vector.why.hasPrefix("padding"), "\(vector.why): \(error?.code ?? "")")
        if vector.why.hasPrefix("contents: version") {
            #expect(error?.code == "envelope-version" && error?.message.contains("version 3") == true)
        }
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
            let sealed = try vector.envelope().sealed(to: fixture.envelopeKey(vector.to).publicKey, mailbox: vector.mailbox)
            #expect(try vector.open(sealed) == vector.envelope())
            envelopes.append(["name": vector.name, "sealed": Hex.encode(sealed)])
        }
        let document: [String: Any] = [
            "source": "Tests/ValiseSessionTests/EnvelopeInteropTests.swift (writeSealedByValise): SealedEnvelope.sealed(to:mailbox:) "
                + "of Valise (HPKE X-Wing through swift-crypto, fresh randomness), from the inputs of each envelope of envelope-vectors.json "
                + "(same name), to the recipient's envelope key and mailbox. "
                + "`scripts/interop/envelope.py check envelope-vectors.json envelope-sealed-by-valise.json` opens them.",
            "envelopes": envelopes,
        ]
        let data = try JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        try (data + Data("\n".utf8)).write(to: URL(fileURLWithPath: path))
    }
}
