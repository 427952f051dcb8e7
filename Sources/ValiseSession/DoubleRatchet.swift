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
        writer.write(ratchetKey.bytes)
        writer.write(previousChainLength)
        writer.write(messageNumber)
        return writer.bytes
    }

    public init(decoding bytes: [UInt8]) throws(SessionError) {
        do {
            self = try ByteReader.read(bytes, context: "ratchet header") { (reader, _) throws(FormatError) in
                let key = try reader.readBytes(AgreementPublicKey.byteCount)
                let header = RatchetHeader(
                    ratchetKey: try! AgreementPublicKey(bytes: key), previousChainLength: try reader.readUInt32(),
                    messageNumber: try reader.readUInt32())
                try reader.expectEnd()
                return header
            }
        } catch {
            throw .malformed("the ratchet header")
        }
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

    public var encoded: [UInt8] { header.encoded + ciphertext }

    public init(decoding bytes: [UInt8]) throws(SessionError) {
        guard bytes.count >= RatchetHeader.byteCount + XChaChaPoly.tagByteCount else { throw .malformed("the ratchet message") }
        header = try RatchetHeader(decoding: Array(bytes[0..<RatchetHeader.byteCount]))
        ciphertext = Array(bytes[RatchetHeader.byteCount...])
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
    var sendingChain: SecretBytes?
    var receivingChain: SecretBytes?
    var sent: UInt32 = 0
    var received: UInt32 = 0
    var previousSendingChainLength: UInt32 = 0
    var skipped: [SkippedKey: SecretBytes] = [:]
    var skippedOrder: [SkippedKey] = []
    /// The session's associated data (from X3DH: both identity keys).
    public let associatedData: [UInt8]

    /// The initiator's start (RatchetInitAlice): the first remote ratchet key is the
    /// responder's signed prekey.
    public init(
        initiatorWith agreement: X3DH.Agreement, remoteRatchetKey: AgreementPublicKey, ratchetKey: AgreementPrivateKey = AgreementPrivateKey()
    ) throws(SessionError) {
        associatedData = agreement.associatedData
        sendingRatchetKey = ratchetKey
        receivingRatchetKey = remoteRatchetKey
        let (root, chain) = try Self.rootStep(agreement.sharedSecret, Self.agree(ratchetKey, remoteRatchetKey))
        rootKey = root
        sendingChain = chain
    }

    /// The responder's start (RatchetInitBob): its first ratchet key pair is its signed prekey.
    public init(responderWith agreement: X3DH.Agreement, signedPrekey: AgreementPrivateKey) {
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
        let (next, messageKey) = Self.chainStep(chain)
        let header = RatchetHeader(ratchetKey: sendingRatchetKey.publicKey, previousChainLength: previousSendingChainLength, messageNumber: sent)
        guard sent < UInt32.max else { throw SessionError(code: "chain-exhausted", message: "the sending chain is exhausted") }
        sendingChain = next
        sent += 1
        return RatchetMessage(header: header, ciphertext: try seal(plaintext, messageKey: messageKey, header: header))
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
            let plaintext = try open(message, messageKey: messageKey)
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
        let (nextChain, messageKey) = Self.chainStep(chain)
        receivingChain = nextChain
        received += 1
        return try open(message, messageKey: messageKey)
    }

    private mutating func skipMessageKeys(until end: UInt32) throws(SessionError) {
        guard let chain = receivingChain, let ratchetKey = receivingRatchetKey else { return }
        guard end >= received else { return }
        guard UInt64(end) - UInt64(received) <= UInt64(Self.maximumSkip) else {
            throw .tooManySkipped(UInt64(end) - UInt64(received), limit: Self.maximumSkip)
        }
        var current = chain
        while received < end {
            let (nextChain, messageKey) = Self.chainStep(current)
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

    // MARK: The functions the specification names

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

    /// KDF_CK(ck) → (next chain key, message key).
    static func chainStep(_ chainKey: SecretBytes) -> (SecretBytes, SecretBytes) {
        (HMACSHA256.authenticate(key: chainKey, message: [.bytes([0x02])]),
         HMACSHA256.authenticate(key: chainKey, message: [.bytes([0x01])]))
    }

    /// The AEAD key and nonce of one message key.
    static func messageCipher(_ messageKey: SecretBytes) -> (SymmetricKey, XChaChaPoly.Nonce) {
        let output = try! HKDF<HMACSHA256>.deriveKey(
            inputKeyMaterial: messageKey, salt: [UInt8](repeating: 0, count: 32), info: messageInfo, outputByteCount: 56)
        let key = try! SymmetricKey(output.slice(0..<32))
        let nonce = output.slice(32..<56).withUnsafeBytes { try! XChaChaPoly.Nonce(bytes: Array($0)) }
        return (key, nonce)
    }

    private func seal(_ plaintext: [UInt8], messageKey: SecretBytes, header: RatchetHeader) throws(SessionError) -> [UInt8] {
        let (key, nonce) = Self.messageCipher(messageKey)
        return XChaChaPoly.seal(plaintext, using: key, nonce: nonce, authenticating: associatedData + header.encoded)
    }

    private func open(_ message: RatchetMessage, messageKey: SecretBytes) throws(SessionError) -> [UInt8] {
        let (key, nonce) = Self.messageCipher(messageKey)
        do {
            return try XChaChaPoly.open(message.ciphertext, using: key, nonce: nonce, authenticating: associatedData + message.header.encoded)
        } catch {
            throw .undecryptable
        }
    }
}
