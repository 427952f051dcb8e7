import CSodium
import ValiseCrypto
import ValiseSession

#if canImport(Glibc)
import Glibc
#endif

/// The client's per-message cryptography, as Messenger does it for one message (without
/// the SQLite work around it: the outbox, the correspondent record and the stored session
/// are left out), beside the same libsodium calls made in a straight line on preallocated
/// buffers.
///
/// - encrypt + seal: `MessageContent.encoded`, `Session.encrypt` (a message in the current
///   sending chain, after a reply, so without the PQXDH header), `SealedEnvelope.sealed(to:)`;
/// - open + decrypt: `SealedEnvelope.open`, `Session.decrypt` on a copy that replaces the
///   stored one (as Messenger does), `MessageContent(decoding:)`.
///
/// The text is 250 bytes, so the message contents are 256 bytes, the session message 314
/// and the envelope 4,096 (the smallest bucket). Both sides stay in one chain (no DH
/// ratchet step), the steady state of a run of messages in one direction.
struct CryptoBenchmark {
    let iterations: Int
    let repetitions: Int

    static let textByteCount = 250
    static let precedence: UInt8 = 2
    static let ttlClass: UInt8 = 2

    struct Sample {
        var seconds: Double = 0
        var heap = 0
        var guarded = 0

        mutating func add(_ other: Sample) {
            seconds += other.seconds
            heap += other.heap
            guarded += other.guarded
        }
    }

    struct Result {
        var encrypt: [Sample] = []
        var rawEncrypt: [Sample] = []
        var decrypt: [Sample] = []
        var rawDecrypt: [Sample] = []
        var envelopeByteCount = 0
    }

    /// Messages per slice: Valise and raw take turns slice by slice, so that a change in
    /// the machine's load (it is shared) falls on both alike.
    static let sliceCount = 50

    func run() -> Result {
        let ids = (0..<iterations).map { _ in Random.bytes(count: SealedEnvelope.idByteCount) }
        let valise = ValiseEnds()
        let raw = RawEnds(capacity: iterations)
        var result = Result()
        // One unmeasured round first: page faults, lazy initialisation, pools, caches.
        _ = round(valise, raw, ids: ids)
        for _ in 0..<repetitions {
            let (encrypt, rawEncrypt, decrypt, rawDecrypt, size) = round(valise, raw, ids: ids)
            result.record(encrypt, decrypt, rawEncrypt, rawDecrypt, size)
        }
        return result
    }

    private func round(_ valise: ValiseEnds, _ raw: RawEnds, ids: [[UInt8]]) -> (Sample, Sample, Sample, Sample, Int) {
        var sealed: [[UInt8]] = []
        sealed.reserveCapacity(ids.count)
        var encrypt = Sample(), rawEncrypt = Sample(), decrypt = Sample(), rawDecrypt = Sample()
        let slices = stride(from: 0, to: ids.count, by: Self.sliceCount).map { $0..<min($0 + Self.sliceCount, ids.count) }
        for (number, slice) in slices.enumerated() {
            let valiseTurn = { encrypt.add(measure { for index in slice { sealed.append(valise.encryptAndSeal(id: ids[index])) } }) }
            let rawTurn = { rawEncrypt.add(measure { for index in slice { raw.encryptAndSeal(id: ids[index], into: index) } }) }
            if number % 2 == 0 { valiseTurn(); rawTurn() } else { rawTurn(); valiseTurn() }
        }
        var opened = 0, rawOpened = 0
        for (number, slice) in slices.enumerated() {
            let valiseTurn = {
                decrypt.add(measure { for index in slice where valise.openAndDecrypt(sealed[index], id: ids[index]) { opened += 1 } })
            }
            let rawTurn = {
                rawDecrypt.add(measure { for index in slice where raw.openAndDecrypt(from: index, id: ids[index]) { rawOpened += 1 } })
            }
            if number % 2 == 0 { valiseTurn(); rawTurn() } else { rawTurn(); valiseTurn() }
        }
        precondition(opened == ids.count && rawOpened == ids.count, "valise-bench: a message did not decrypt")
        return (encrypt, rawEncrypt, decrypt, rawDecrypt, sealed[0].count)
    }

    private func measure(_ body: () -> Void) -> Sample {
        let heap = AllocationCounter.heap
        let guarded = AllocationCounter.guarded
        let seconds = Clock.threadCPUSeconds(body)
        return Sample(seconds: seconds, heap: AllocationCounter.heap - heap, guarded: AllocationCounter.guarded - guarded)
    }
}

extension CryptoBenchmark.Result {
    mutating func record(
        _ encrypt: CryptoBenchmark.Sample, _ decrypt: CryptoBenchmark.Sample,
        _ rawEncrypt: CryptoBenchmark.Sample, _ rawDecrypt: CryptoBenchmark.Sample, _ size: Int
    ) {
        self.encrypt.append(encrypt)
        self.decrypt.append(decrypt)
        self.rawEncrypt.append(rawEncrypt)
        self.rawDecrypt.append(rawDecrypt)
        envelopeByteCount = size
    }
}

/// Alice and Bob with a session in which Bob has replied, so Alice's messages are plain
/// ratchet messages; Bob has read Alice's first message of her new chain.
private final class ValiseEnds {
    let alice = SigningKey()
    let bob = SigningKey()
    let bobEnvelopeKey = XWingPrivateKey()
    let mailbox = "bob@nairobi"
    var aliceSession: Session
    var bobSession: Session
    let text = String(repeating: "x", count: CryptoBenchmark.textByteCount)
    let head = SealedEnvelope.DirectoryHead(sequence: 41, hash: Random.bytes(count: 32))
    let timestamp: UInt64 = 1_800_000_000

    init() {
        let signedPrekey = AgreementPrivateKey()
        let kemPrekey = MLKEM1024PrivateKey()
        let bundle = PQXDH.PrekeyBundle(
            identityKey: bob.publicKey, signedPrekey: signedPrekey.publicKey,
            signedPrekeySignature: PQXDH.signPrekey(signedPrekey.publicKey, with: bob), oneTimePrekey: nil,
            kemPrekey: PQXDH.KEMPrekey(key: kemPrekey.publicKey, kind: .lastResort, signedBy: bob))
        aliceSession = try! Session.initiate(identity: alice, bundle: bundle)
        let first = try! aliceSession.encrypt(MessageContent.text("hello").encoded)
        let prekeys = Session.Prekeys(
            signedPrekey: { $0 == signedPrekey.publicKey ? signedPrekey : nil }, oneTimePrekey: { _ in nil },
            kemPrekey: { $0 == PQXDH.kemPrekeyID(kemPrekey.publicKey) ? (kemPrekey, .lastResort) : nil },
            seenBefore: { _ in false })
        bobSession = try! Session.accept(first, identity: bob, prekeys: prekeys).session
        _ = try! aliceSession.decrypt(bobSession.encrypt(MessageContent.text("hello to you").encoded))
        precondition(!aliceSession.awaitsReply)
        _ = try! bobSession.decrypt(aliceSession.encrypt(MessageContent.text("a new chain").encoded))
    }

    func encryptAndSeal(id: [UInt8]) -> [UInt8] {
        let content = MessageContent.text(text)
        let message = try! aliceSession.encrypt(content.encoded)
        let envelope = SealedEnvelope(
            id: id, recipient: bob.publicKey, precedence: CryptoBenchmark.precedence, ttlClass: CryptoBenchmark.ttlClass,
            sender: alice.publicKey, senderHead: head, timestamp: timestamp, sessionMessage: message)
        return try! envelope.sealed(to: bobEnvelopeKey.publicKey, mailbox: mailbox)
    }

    func openAndDecrypt(_ sealed: [UInt8], id: [UInt8]) -> Bool {
        let labels = SealedEnvelope.Labels(mailbox: mailbox, id: id, precedence: CryptoBenchmark.precedence, ttlClass: CryptoBenchmark.ttlClass)
        let envelope = try! SealedEnvelope.open(
            sealed, with: bobEnvelopeKey, labels: labels, appliedTTLClass: CryptoBenchmark.ttlClass, recipients: [bob.publicKey])
        var session = bobSession
        let plaintext = try! session.decrypt(envelope.sessionMessage)
        bobSession = session
        guard case .text(let text) = try! MessageContent(decoding: plaintext) else { return false }
        return text.utf8.count == CryptoBenchmark.textByteCount && envelope.sender == alice.publicKey
    }
}

extension Clock {
    /// CPU time of this thread (user and system), not wall time: on a machine shared with
    /// other work, time spent waiting for a core would otherwise count as cost.
    static func threadCPUSeconds(_ body: () -> Void) -> Double {
        var start = timespec()
        var end = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start)
        body()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &end)
        return Double(end.tv_sec - start.tv_sec) + Double(end.tv_nsec - start.tv_nsec) / 1e9
    }
}
