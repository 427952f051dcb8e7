import Foundation
import ValiseCrypto
import ValiseDirectory
import ValiseSession
import ValiseWire

/// The parsers that face the network or the disk, each as a function of arbitrary bytes,
/// for libFuzzer (`scripts/fuzz TARGET SECONDS`, through `valise-fuzz`) and for the
/// regression tests that replay committed inputs. Any input may be refused; none may crash,
/// hang or trap.
public enum FuzzTargets {
    public static let names = [
        "frames", "noise-responder", "noise-initiator", "relay-messages", "directory", "envelope", "keystore", "link-responder",
        "link-messages", "relay-store",
    ]

    /// Runs target `name` on `input`; false if there is no such target.
    @discardableResult
    public static func run(_ name: String, _ input: [UInt8]) -> Bool {
        switch name {
        case "frames": frames(input)
        case "noise-responder": noiseResponder(input)
        case "noise-initiator": noiseInitiator(input)
        case "relay-messages": relayMessages(input)
        case "directory": directory(input)
        case "envelope": envelope(input)
        case "keystore": keystore(input)
        case "link-responder": linkResponder(input)
        case "link-messages": linkMessages(input)
        case "relay-store": relayStore(input)
        default: return false
        }
        return true
    }

    /// Well-formed inputs made in code, to start a fuzzer's corpus past the first checks
    /// (files in Fuzz/seeds/ add real bundles and keystores).
    public static func seeds(_ name: String) -> [[UInt8]] {
        switch name {
        case "relay-messages":
            var hello = WireClientMessage()
            hello.requestID = 1
            hello.body = .hello(WireHello())
            var send = WireSend()
            send.id = Data(Fixed.id)
            send.recipient = "bob@geneva"
            send.precedence = .flash
            send.ttl = .day
            send.envelope = Data([UInt8](repeating: 1, count: 64))
            var sending = WireClientMessage()
            sending.requestID = 2
            sending.body = .send(send)
            var deliver = WireDeliver()
            deliver.id = Data(Fixed.id)
            deliver.ttl = .week
            deliver.requestedTtl = .month
            var delivering = WireRelayMessage()
            delivering.body = .deliver(deliver)
            return [WireCodec.encode(hello), WireCodec.encode(sending), WireCodec.encode(delivering)] + blobSeeds()
        case "noise-responder":
            // The preamble and a genuine hybrid first message (1248 bytes) to the fixed relay
            // key, whole and cut by a first byte of 64; and a classical client's (version 1).
            var client = ClientConnectionState(
                clientKey: AgreementPrivateKey(), relayKey: Fixed.relayKey.publicKey, maximumMessageLength: 1 << 16)
            var classical = ClientConnectionState(
                clientKey: AgreementPrivateKey(), relayKey: Fixed.relayKey.publicKey, preamble: Preamble(.client, version: 1),
                protocol: .classicalClientRelay, maximumMessageLength: 1 << 16)
            let opening = client.start().compactMap { if case .write(let bytes) = $0 { bytes } else { nil } }.joined()
            let old = classical.start().compactMap { if case .write(let bytes) = $0 { bytes } else { nil } }.joined()
            return [[255] + opening, [64] + opening, [255] + old]
        case "noise-initiator":
            // The relay's possible first words: its notices, and a frame 2 of the right length.
            let reply = FrameDecoder.frame((0..<1152).map { UInt8(truncatingIfNeeded: $0 &* 7) })
            return [[255] + RelayNotice.version(1).bytes, [255] + RelayNotice.busy.bytes, [255] + reply, [64] + reply]
        case "link-responder":
            // A relay link's opening to the fixed relay key from the admitted fixed key 9:
            // preamble, key and a genuine frame 1, whole and cut by a first byte of 64.
            var initiator = LinkInitiatorState(localStatic: Fixed.key(9), remoteStatic: Fixed.relayKey.publicKey)
            let opening = initiator.start().compactMap { if case .write(let bytes) = $0 { bytes } else { nil } }.joined()
            return [[255] + opening, [64] + opening]
        case "link-messages":
            var forward = LinkForward()
            forward.id = Data(Fixed.id)
            forward.recipient = "bob@geneva"
            forward.precedence = .flash
            forward.hops = 1
            forward.envelope = Data([UInt8](repeating: 1, count: 64))
            var request = LinkLinkRequest()
            request.requestID = 1
            request.forward = forward
            var reply = LinkLinkReply()
            reply.requestID = 1
            reply.forwardResult.id = Data(Fixed.id)
            reply.forwardResult.outcome = .temporary
            reply.forwardResult.reason = .notHome
            reply.forwardResult.homeRelay = "hq"
            // Blobs over links (issue 20): an offer, a part and a result.
            var offer = LinkLinkRequest()
            offer.requestID = 2
            offer.blobOffer.blobID = Data(repeating: 0xB1, count: 32)
            offer.blobOffer.size = 300_000
            offer.blobOffer.remainingSeconds = 3600
            offer.blobOffer.fetches = 2
            var part = LinkLinkRequest()
            part.requestID = 3
            part.blobPart.blobID = offer.blobOffer.blobID
            part.blobPart.offset = 262_144
            part.blobPart.data = Data([UInt8](repeating: 2, count: 64))
            var result = LinkLinkReply()
            result.requestID = 3
            result.blobResult.blobID = offer.blobOffer.blobID
            result.blobResult.outcome = .continue
            result.blobResult.committed = 262_208
            return [request, offer, part].map(LinkCodec.encode) + [reply, result].map(LinkCodec.encode)
        case "relay-store":
            return storeSeeds()
        case "envelope":
            // Session messages of format 2, the PQXDH initial header alone, a stored session.
            let header = (try? Session.initialHeader(of: Fixed.aliceMessages[0]))??.encoded ?? []
            return Fixed.aliceMessages + [header, Fixed.bobSession.stored.withUnsafeBytes { Array($0) }]
        default:
            return []
        }
    }

    /// One of each blob request and answer (issue 20), so that a fuzzer starts inside them.
    static func blobSeeds() -> [[UInt8]] {
        let id = Data(repeating: 0xB1, count: 32)
        var upload = WireBlobUpload()
        upload.blobID = id
        upload.size = 300_000
        upload.ttl = .week
        var fetches = WireBlobFetches()
        fetches.relay = "geneva"
        fetches.count = 3
        upload.fetches = [fetches, WireBlobFetches()]
        var chunk = WireBlobChunk()
        chunk.blobID = id
        chunk.offset = 262_144
        chunk.data = Data([UInt8](repeating: 2, count: 64))
        var fetch = WireBlobFetch()
        fetch.blobID = id
        fetch.offset = 1
        fetch.length = 4096
        var fetched = WireBlobFetched()
        fetched.blobID = id
        var state = WireBlobState()
        state.blobID = id
        state.size = 300_000
        state.committed = 262_144
        state.expiresAt = 1_800_000_000
        var data = WireBlobData()
        data.blobID = id
        data.data = Data([1, 2, 3])
        data.size = 3
        let requests: [WireClientMessage.OneOf_Body] = [.blobUpload(upload), .blobChunk(chunk), .blobFetch(fetch), .blobFetched(fetched)]
        let answers: [WireRelayMessage.OneOf_Body] = [.blobState(state), .blobData(data)]
        return requests.enumerated().map { index, body in
            var message = WireClientMessage()
            message.requestID = UInt64(index + 3)
            message.body = body
            return WireCodec.encode(message)
        } + answers.map { body in
            var message = WireRelayMessage()
            message.requestID = 9
            message.body = body
            return WireCodec.encode(message)
        }
    }

    /// The first byte decides how the rest is cut into reads, as TCP may cut it.
    static func chunks(_ input: [UInt8]) -> [[UInt8]] {
        guard let first = input.first else { return [] }
        let size = max(1, Int(first))
        return stride(from: 1, to: input.count, by: size).map { Array(input[$0..<min($0 + size, input.count)]) }
    }

    /// Length-prefixed framing: every frame it yields fits the bound; a bad length throws.
    static func frames(_ input: [UInt8]) {
        var decoder = FrameDecoder()
        for chunk in chunks(input) {
            decoder.append(chunk)
            while true {
                guard let frame = try? decoder.nextFrame() else { break }
                precondition(frame.count <= FrameDecoder.maximumFrameLength)
            }
        }
    }

    /// The relay's side of a connection (framing, the Noise_XKhfs responder, reassembly) fed
    /// arbitrary bytes in arbitrary pieces.
    static func noiseResponder(_ input: [UInt8]) {
        var state = RelayConnectionState(relayKey: Fixed.relayKey, maximumMessageLength: 1 << 16)
        for chunk in chunks(input) {
            let actions = state.receive(chunk)
            if actions.contains(where: { if case .close = $0 { return true } else { return false } }) { break }
        }
    }

    /// The client's side of a connection after its first message (a notice, or the relay's
    /// frame 2 with its ML-KEM-768 ciphertext, then transport frames) fed arbitrary bytes.
    static func noiseInitiator(_ input: [UInt8]) {
        var state = ClientConnectionState(clientKey: Fixed.key(9), relayKey: Fixed.relayKey.publicKey, maximumMessageLength: 1 << 16)
        _ = state.start()
        for chunk in chunks(input) {
            let actions = state.receive(chunk)
            if actions.contains(where: { if case .close = $0 { return true } else { return false } }) { break }
        }
    }

    /// Relay protocol messages both ways; what decodes must encode and decode to the same.
    static func relayMessages(_ input: [UInt8]) {
        if let message = try? WireCodec.decodeClientMessage(input) {
            let again = try? WireCodec.decodeClientMessage(WireCodec.encode(message))
            precondition(again == message, "a client message does not survive encoding")
        }
        if let message = try? WireCodec.decodeRelayMessage(input) {
            let again = try? WireCodec.decodeRelayMessage(WireCodec.encode(message))
            precondition(again == message, "a relay message does not survive encoding")
        }
    }

    /// A relay's side of a relay link (the preamble, the announced key with its admission,
    /// framing with the 1,248-byte bound, the Noise_KKhfs responder, reassembly) fed arbitrary
    /// bytes in arbitrary pieces; only fixed key 9 is admitted.
    static func linkResponder(_ input: [UInt8]) {
        let admitted = Fixed.key(9).publicKey
        var state = LinkResponderState(localStatic: Fixed.relayKey, maximumMessageLength: 1 << 16, admit: { $0 == admitted })
        for chunk in chunks(input) {
            let actions = state.receive(chunk)
            if actions.contains(where: { if case .close = $0 { return true } else { return false } }) { break }
        }
    }

    /// Relay-link messages both ways; what decodes must encode and decode to the same.
    static func linkMessages(_ input: [UInt8]) {
        if let message = try? LinkCodec.decodeRequest(input) {
            precondition((try? LinkCodec.decodeRequest(LinkCodec.encode(message))) == message, "a link request does not survive encoding")
        }
        if let message = try? LinkCodec.decodeReply(input) {
            precondition((try? LinkCodec.decodeReply(LinkCodec.encode(message))) == message, "a link reply does not survive encoding")
        }
    }

    /// Directory files and entries, then the verifier over whatever parsed.
    static func directory(_ input: [UInt8]) {
        if let bundle = try? OrganisationBundle(decoding: input) {
            _ = try? DirectoryVerifier.verify(bundle.entries, pinnedGenesis: nil, now: Fixed.now)
        }
        if let entry = try? DirectoryEntry(decoding: input) {
            _ = try? DirectoryVerifier.verify([entry], pinnedGenesis: nil, now: Fixed.now)
        }
        _ = try? Checkpoint(decoding: input)
        // The files people paste from mail: armored text or the binary form.
        _ = try? MemberRequest(fileBytes: input)
        _ = try? AdminPublicFile(fileBytes: input)
        _ = try? RelayPublicFile(fileBytes: input)
    }

    /// Everything a received envelope goes through: the seal, the contents inside it (the
    /// input sealed properly, so the parser behind the seal is reached), the session
    /// message in a session that exists and as a new one (its PQXDH header alone too), the
    /// message contents and a stored session.
    static func envelope(_ input: [UInt8]) {
        let recipients = [Fixed.bob.publicKey]
        _ = try? SealedEnvelope.open(input, with: Fixed.envelopeKey, labels: Fixed.labels, appliedTTLClass: 3, recipients: recipients)
        for bucket in SealedEnvelope.buckets.prefix(2) where input.count < bucket - SealedEnvelope.overheadByteCount {
            let padded = Padding.pad(input, toMultipleOf: bucket - SealedEnvelope.overheadByteCount)
            if let sealed = try? HPKEXWing.seal(padded, to: Fixed.envelopeKey.publicKey, info: SealedEnvelope.info, aad: Fixed.labels.associatedData!) {
                _ = try? SealedEnvelope.open(
                    sealed.encapsulatedKey + sealed.ciphertext, with: Fixed.envelopeKey, labels: Fixed.labels, appliedTTLClass: 3, recipients: recipients)
            }
            break
        }
        var session = Fixed.bobSession
        _ = try? session.decrypt(input)
        _ = try? Session.accept(input, identity: Fixed.bob, prekeys: Fixed.bobPrekeys)
        _ = try? MessageContent(decoding: input)
        _ = try? PQXDH.InitialHeader(decoding: input)
        _ = try? Session(stored: SecretBytes(copying: input))
    }

    /// The keystore container, without a passphrase (parsing bounds everything first).
    static func keystore(_ input: [UInt8]) {
        _ = try? KeystoreFile(parsing: input)
    }
}
