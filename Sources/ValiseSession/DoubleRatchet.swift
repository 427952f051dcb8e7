public import ValiseCrypto

/// The header of a Double Ratchet message: the sender's current ratchet key, the length of
/// its previous sending chain (PN) and the message's number in the current chain (N).
public struct RatchetHeader: Sendable, Equatable, Hashable {
    public static let byteCount = 40
    public let ratchetKey: AgreementPublicKey
    public let previousChainLength: UInt32
    public let messageNumber: UInt32

    public init(ratchetKey: AgreementPublicKey, previousChainLength: UInt32, messageNumber: UInt32) {
        self.ratchetKey = ratchetKey
        self.previousChainLength = previousChainLength
        self.messageNumber = messageNumber
    }

    /// `DHs (32) ‖ u32 PN ‖ u32 N`, big-endian.
    public var encoded: [UInt8] {
        var writer = ByteWriter(capacity: Self.byteCount)
        write(to: &writer)
        return writer.bytes
    }

    func write(to writer: inout ByteWriter) {
        writer.write(ratchetKey.bytes)
        writer.write(previousChainLength)
        writer.write(messageNumber)
    }

    public init(decoding bytes: [UInt8]) throws(SessionError) {
        try self.init(decoding: bytes[...])
    }

    /// Reads the header in place (a message's first 40 bytes), without copying the rest.
    init(decoding bytes: ArraySlice<UInt8>) throws(SessionError) {
        guard bytes.count == Self.byteCount else { throw .malformed("the ratchet header") }
        let start = bytes.startIndex
        let keyEnd = start + AgreementPublicKey.byteCount
        ratchetKey = try! AgreementPublicKey(bytes: Array(bytes[start..<keyEnd]))
        previousChainLength = bytes[keyEnd..<(keyEnd + 4)].reduce(0) { $0 << 8 | UInt32($1) }
        messageNumber = bytes[(keyEnd + 4)..<(keyEnd + 8)].reduce(0) { $0 << 8 | UInt32($1) }
    }
}

/// A Double Ratchet message on the wire: header (40 bytes) ‖ ciphertext ‖ tag (16).
public struct RatchetMessage: Sendable, Equatable {
    public let header: RatchetHeader
    public let ciphertext: [UInt8]

    public init(header: RatchetHeader, ciphertext: [UInt8]) {
        self.header = header
        self.ciphertext = ciphertext
    }

    public var encoded: [UInt8] {
        var writer = ByteWriter(capacity: RatchetHeader.byteCount + ciphertext.count)
        write(to: &writer)
        return writer.bytes
    }

    func write(to writer: inout ByteWriter) {
        header.write(to: &writer)
        writer.write(ciphertext)
    }

    public init(decoding bytes: [UInt8]) throws(SessionError) {
        try self.init(decoding: bytes[...])
    }

    /// Reads a message that ends a longer buffer (a session message) without copying it first.
    init(decoding bytes: ArraySlice<UInt8>) throws(SessionError) {
        guard bytes.count >= RatchetHeader.byteCount + XChaChaPoly.tagByteCount else { throw .malformed("the ratchet message") }
        let headerEnd = bytes.startIndex + RatchetHeader.byteCount
        header = try RatchetHeader(decoding: bytes[bytes.startIndex..<headerEnd])
        ciphertext = Array(bytes[headerEnd...])
    }
}

/// Signal's Double Ratchet (https://signal.org/docs/specifications/doubleratchet/) with the
/// parameters docs/PROTOCOL.md ("End-to-end") fixes: X25519; KDF_RK = HKDF-SHA-256(salt =
/// root key, IKM = DH output, info `Valise_DR_Root_v1`, 64 bytes → new root key ‖ chain
/// key); KDF_CK: message key = HMAC-SHA-256(CK, 0x01), next CK = HMAC-SHA-256(CK, 0x02);
/// ENCRYPT = XChaCha20-Poly1305 under a key and nonce derived from the message key
/// (HKDF-SHA-256, salt 32 zero bytes, info `Valise_DR_Message_v1`, 56 bytes → key ‖ nonce),
/// associated data = the session's AD ‖ the encoded header.
///
/// A value: `encrypt` and `decrypt` are mutating, and `decrypt` changes the state only
/// when the message authenticates, so a forged or garbled message leaves the session as it
/// was. Secrets live in `SecretBytes` (guarded memory, wiped when released).
public struct DoubleRatchet: Sendable {
    public static let rootInfo = Array("Valise_DR_Root_v1".utf8)
    public static let messageInfo = Array("Valise_DR_Message_v1".utf8)
    /// KDF_CK's constants and the message key's HKDF, for `SymmetricRatchet`.
    static let symmetric = SymmetricRatchet.Parameters(
        chainConstant: 0x02, messageConstant: 0x01, salt: [UInt8](repeating: 0, count: 32), info: messageInfo)
    /// Message keys one message may make the session skip (and keep): MAX_SKIP.
    public static let maximumSkip = 1000
    /// Skipped message keys kept in all; the oldest go first.
    public static let maximumStoredSkipped = 2000

    struct SkippedKey: Hashable, Sendable {
        let ratchetKey: AgreementPublicKey
        let number: UInt32
    }

    var sendingRatchetKey: AgreementPrivateKey
    var receivingRatchetKey: AgreementPublicKey?
    var rootKey: SecretBytes
    // Chain keys change with every message; small secrets take arena slots, not pages of their own.
    var sendingChain: SecretBytes?
    var receivingChain: SecretBytes?
    var sent: UInt32 = 0
    var received: UInt32 = 0
    var previousSendingChainLength: UInt32 = 0
    var skipped: [SkippedKey: SecretBytes] = [:]
    var skippedOrder: [SkippedKey] = []
    /// The session's associated data (from PQXDH: both identity keys, the KEM prekey id and the ciphertext's hash).
    public let associatedData: [UInt8]

    /// The initiator's start (RatchetInitAlice): the first remote ratchet key is the
    /// responder's signed prekey.
    public init(
        initiatorWith agreement: PQXDH.Agreement, remoteRatchetKey: AgreementPublicKey, ratchetKey: AgreementPrivateKey = AgreementPrivateKey()
    ) throws(SessionError) {
        associatedData = agreement.associatedData
        sendingRatchetKey = ratchetKey
        receivingRatchetKey = remoteRatchetKey
        let (root, chain) = try Self.rootStep(agreement.sharedSecret, Self.agree(ratchetKey, remoteRatchetKey))
        rootKey = root
        sendingChain = chain
    }

    /// The responder's start (RatchetInitBob): its first ratchet key pair is its signed prekey.
    public init(responderWith agreement: PQXDH.Agreement, signedPrekey: AgreementPrivateKey) {
        associatedData = agreement.associatedData
        sendingRatchetKey = signedPrekey
        rootKey = agreement.sharedSecret
    }

    /// Whether this side can send yet (a responder can once it has received).
    public var canSend: Bool { sendingChain != nil }

    /// The number of skipped message keys held (for tests and status).
    public var skippedKeyCount: Int { skipped.count }

    public mutating func encrypt(_ plaintext: [UInt8]) throws(SessionError) -> RatchetMessage {
        guard let chain = sendingChain else {
            throw SessionError(code: "cannot-send", message: "the session cannot send before it has received a message")
        }
        guard sent < UInt32.max else { throw SessionError(code: "chain-exhausted", message: "the sending chain is exhausted") }
        let (next, messageKey) = SymmetricRatchet.step(chain, Self.symmetric)
        let header = RatchetHeader(ratchetKey: sendingRatchetKey.publicKey, previousChainLength: previousSendingChainLength, messageNumber: sent)
        sendingChain = next
        sent += 1
        let ciphertext = SymmetricRatchet.seal(plaintext, messageKey: messageKey, Self.symmetric, associatedData: associatedData, header: header.encoded)
        return RatchetMessage(header: header, ciphertext: ciphertext)
    }

    /// Decrypts `message`, ratcheting forward as its header says; `newRatchetKey` makes the
    /// next sending key (tests give fixed ones).
    public mutating func decrypt(
        _ message: RatchetMessage, newRatchetKey: () -> AgreementPrivateKey = { AgreementPrivateKey() }
    ) throws(SessionError) -> [UInt8] {
        var next = self
        let plaintext = try next.decryptInPlace(message, newRatchetKey: newRatchetKey)
        self = next
        return plaintext
    }

    private mutating func decryptInPlace(_ message: RatchetMessage, newRatchetKey: () -> AgreementPrivateKey) throws(SessionError) -> [UInt8] {
        let header = message.header
        let slot = SkippedKey(ratchetKey: header.ratchetKey, number: header.messageNumber)
        if let messageKey = skipped[slot] {
            let plaintext: [UInt8]
            do {
                plaintext = try SymmetricRatchet.open(
                    message.ciphertext, messageKey: messageKey, Self.symmetric, associatedData: associatedData, header: message.header.encoded)
            } catch {
                throw .undecryptable
            }
            skipped[slot] = nil
            skippedOrder.removeAll { $0 == slot }
            return plaintext
        }
        if header.ratchetKey != receivingRatchetKey {
            try skipMessageKeys(until: header.previousChainLength)
            try ratchet(to: header.ratchetKey, newRatchetKey: newRatchetKey())
        } else if header.messageNumber < received {
            throw .duplicate
        }
        try skipMessageKeys(until: header.messageNumber)
        guard let chain = receivingChain else { throw .undecryptable }
        let (nextChain, messageKey) = SymmetricRatchet.step(chain, Self.symmetric)
        receivingChain = nextChain
        received += 1
        do {
            return try SymmetricRatchet.open(
                message.ciphertext, messageKey: messageKey, Self.symmetric, associatedData: associatedData, header: message.header.encoded)
        } catch {
            throw .undecryptable
        }
    }

    private mutating func skipMessageKeys(until end: UInt32) throws(SessionError) {
        guard let chain = receivingChain, let ratchetKey = receivingRatchetKey else { return }
        guard end >= received else { return }
        guard UInt64(end) - UInt64(received) <= UInt64(Self.maximumSkip) else {
            throw .tooManySkipped(UInt64(end) - UInt64(received), limit: Self.maximumSkip)
        }
        var current = chain
        while received < end {
            let (nextChain, messageKey) = SymmetricRatchet.step(current, Self.symmetric)
            let slot = SkippedKey(ratchetKey: ratchetKey, number: received)
            // A peer that reuses a ratchet key must not make one slot listed twice.
            if skipped.updateValue(messageKey, forKey: slot) == nil { skippedOrder.append(slot) }
            current = nextChain
            received += 1
        }
        receivingChain = current
        while skippedOrder.count > Self.maximumStoredSkipped {
            skipped[skippedOrder.removeFirst()] = nil
        }
    }

    private mutating func ratchet(to remote: AgreementPublicKey, newRatchetKey: AgreementPrivateKey) throws(SessionError) {
        previousSendingChainLength = sent
        sent = 0
        received = 0
        receivingRatchetKey = remote
        let (root, receiving) = try Self.rootStep(rootKey, Self.agree(sendingRatchetKey, remote))
        sendingRatchetKey = newRatchetKey
        let (nextRoot, sending) = try Self.rootStep(root, Self.agree(newRatchetKey, remote))
        rootKey = nextRoot
        receivingChain = receiving
        sendingChain = sending
    }

    // MARK: The functions the specification names (KDF_CK and ENCRYPT: `SymmetricRatchet`, with `symmetric`)

    private static func agree(_ own: AgreementPrivateKey, _ remote: AgreementPublicKey) throws(SessionError) -> SecretBytes {
        do {
            return try own.sharedSecret(with: remote)
        } catch {
            throw .weakKey
        }
    }

    /// KDF_RK(rk, dh_out) → (new root key, chain key).
    static func rootStep(_ rootKey: SecretBytes, _ dhOutput: SecretBytes) throws(SessionError) -> (SecretBytes, SecretBytes) {
        let output = try! HKDF<HMACSHA256>.expand(
            pseudoRandomKey: HKDF<HMACSHA256>.extract(salt: rootKey, inputKeyMaterial: dhOutput), info: rootInfo, outputByteCount: 64)
        return (output.slice(0..<32), output.slice(32..<64))
    }
}
