public import ValiseCrypto

/// Noise's HandshakeState (section 5.3) as a pure state machine: bytes in, bytes out, no
/// I/O. Each side calls `writeMessage` and `readMessage` in the pattern's order; when the
/// pattern is done, `split()` gives the transport cipher states.
///
/// A failed read ends the handshake: every later call throws, as the specification says a
/// party must abort on any error.
public struct HandshakeState: Sendable {
    public enum Role: Sendable { case initiator, responder }

    public let role: Role
    public let noiseProtocol: NoiseProtocol
    private var symmetric: SymmetricState
    private let staticKey: AgreementPrivateKey?
    private var ephemeralKey: AgreementPrivateKey?
    /// Fixed ephemeral key, for replaying published test vectors only.
    private let fixedEphemeral: AgreementPrivateKey?
    public private(set) var remoteStaticKey: AgreementPublicKey?
    private var remoteEphemeralKey: AgreementPublicKey?
    private var psks: [SecretBytes]
    /// HFS: this side's ML-KEM-768 ephemeral key (the `e1` writer's), dropped (its seed
    /// wiped by SecretBytes) as soon as `ekem1` has been read.
    private var kemEphemeralKey: MLKEM768PrivateKey?
    /// Fixed KEM ephemeral key, for deterministic tests only.
    private let fixedKEMEphemeral: MLKEM768PrivateKey?
    /// HFS, the `ekem1` writer: the encapsulation to the peer's `e1`, made as soon as `e1` is
    /// read (parsing the key once both checks and encapsulates), sent with the next message.
    private var pendingEncapsulation: KEMEncapsulation?
    private var messageIndex = 0
    private var failed = false

    /// - `staticKey`: this side's static key (XK: both sides have one).
    /// - `remoteStaticKey`: the peer's static key when the pattern says it is known before
    ///   the handshake (XK: the initiator knows the responder's).
    public init(
        protocol noiseProtocol: NoiseProtocol, role: Role, prologue: [UInt8],
        staticKey: AgreementPrivateKey?, remoteStaticKey: AgreementPublicKey?, psks: [SecretBytes] = []
    ) throws(NoiseError) {
        try self.init(
            protocol: noiseProtocol, role: role, prologue: prologue, staticKey: staticKey,
            remoteStaticKey: remoteStaticKey, psks: psks, fixedEphemeral: nil)
    }

    /// Test hook: fixed ephemeral keys (X25519 and, for `hfs` patterns, ML-KEM-768 from its
    /// seed), so a handshake's messages can be replayed byte for byte.
    init(
        protocol noiseProtocol: NoiseProtocol, role: Role, prologue: [UInt8], staticKey: AgreementPrivateKey?,
        remoteStaticKey: AgreementPublicKey?, psks: [SecretBytes], fixedEphemeral: AgreementPrivateKey?,
        fixedKEMEphemeral: MLKEM768PrivateKey? = nil
    ) throws(NoiseError) {
        self.role = role
        self.noiseProtocol = noiseProtocol
        self.staticKey = staticKey
        self.remoteStaticKey = remoteStaticKey
        self.fixedEphemeral = fixedEphemeral
        self.fixedKEMEphemeral = fixedKEMEphemeral
        self.psks = psks
        symmetric = SymmetricState(protocolName: noiseProtocol.name)
        symmetric.mixHash(prologue)

        let pattern = noiseProtocol.pattern
        let needsPSKs = pattern.messages.reduce(0) { $0 + $1.filter { $0 == .psk }.count }
        guard psks.count == needsPSKs, psks.allSatisfy({ $0.count == 32 }) else { throw .missingKey("\(needsPSKs) 32-byte pre-shared keys") }
        // Pre-messages: the initiator's first, then the responder's.
        for (owner, tokens) in [(Role.initiator, pattern.initiatorPreMessage), (Role.responder, pattern.responderPreMessage)] {
            for token in tokens where token == .s {
                let key = owner == role ? staticKey?.publicKey : remoteStaticKey
                guard let key else { throw .missingKey(owner == role ? "this side's static key" : "the peer's static key") }
                symmetric.mixHash(key.bytes)
            }
        }
        let usesStatic = pattern.messages.enumerated().contains { index, tokens in
            (index % 2 == 0) == (role == .initiator) && tokens.contains(.s)
        }
        if usesStatic && staticKey == nil { throw .missingKey("this side's static key") }
    }

    /// Whether every handshake message has been written or read.
    public var isComplete: Bool { messageIndex == noiseProtocol.pattern.messages.count }

    /// Whether the next handshake message is this side's to write.
    public var isMyTurn: Bool { !isComplete && (messageIndex % 2 == 0) == (role == .initiator) }

    /// The handshake hash (channel binding), final once the handshake is complete.
    public var handshakeHash: [UInt8] { symmetric.handshakeHash }

    public mutating func writeMessage(payload: [UInt8]) throws(NoiseError) -> [UInt8] {
        guard !failed, isMyTurn else { throw .outOfOrder }
        do throws(NoiseError) {
            var message: [UInt8] = []
            for token in noiseProtocol.pattern.messages[messageIndex] {
                switch token {
                case .e:
                    let ephemeral = fixedEphemeral ?? AgreementPrivateKey()
                    ephemeralKey = ephemeral
                    message += ephemeral.publicKey.bytes
                    symmetric.mixHash(ephemeral.publicKey.bytes)
                    if noiseProtocol.pattern.hasPSK { symmetric.mixKey(SecretBytes(copying: ephemeral.publicKey.bytes)) }
                case .s:
                    message += try symmetric.encryptAndHash(staticKey!.publicKey.bytes)
                case .psk:
                    symmetric.mixKeyAndHash(psks.removeFirst())
                case .e1:
                    let kemEphemeral = fixedKEMEphemeral ?? MLKEM768PrivateKey()
                    kemEphemeralKey = kemEphemeral
                    message += try symmetric.encryptAndHash(kemEphemeral.publicKey.bytes)
                case .ekem1:
                    guard let encapsulation = pendingEncapsulation else { throw NoiseError.missingKey("the peer's KEM key for ekem1") }
                    message += try symmetric.encryptAndHash(encapsulation.ciphertext)
                    symmetric.mixKey(encapsulation.sharedSecret)
                    pendingEncapsulation = nil
                default:
                    try mixDH(token)
                }
            }
            message += try symmetric.encryptAndHash(payload)
            guard message.count <= CipherState.maximumMessageLength else { throw NoiseError.tooLarge }
            messageIndex += 1
            return message
        } catch {
            failed = true
            throw error
        }
    }

    public mutating func readMessage(_ message: [UInt8]) throws(NoiseError) -> [UInt8] {
        guard !failed, !isComplete, !isMyTurn else { throw .outOfOrder }
        do throws(NoiseError) {
            guard message.count <= CipherState.maximumMessageLength else { throw NoiseError.tooLarge }
            var rest = message[...]
            for token in noiseProtocol.pattern.messages[messageIndex] {
                switch token {
                case .e:
                    guard rest.count >= 32 else { throw NoiseError.badLength }
                    let bytes = Array(rest.prefix(32))
                    rest = rest.dropFirst(32)
                    remoteEphemeralKey = try! AgreementPublicKey(bytes: bytes)
                    symmetric.mixHash(bytes)
                    if noiseProtocol.pattern.hasPSK { symmetric.mixKey(SecretBytes(copying: bytes)) }
                case .s:
                    let bytes = try readEncrypted(32, from: &rest)
                    remoteStaticKey = try! AgreementPublicKey(bytes: bytes)
                case .psk:
                    symmetric.mixKeyAndHash(psks.removeFirst())
                case .e1:
                    let bytes = try readEncrypted(MLKEM768Scheme.parameters.publicKeyByteCount, from: &rest)
                    // Parsed (and so validated, FIPS 203's check) by swift-crypto, which then
                    // encapsulates to it: a key that fails is refused here, on reading.
                    guard let encapsulation = try? MLKEM768PublicKey.encapsulate(toKeyBytes: bytes) else { throw NoiseError.invalidKEMKey }
                    pendingEncapsulation = encapsulation
                case .ekem1:
                    let ciphertext = try readEncrypted(MLKEM768Scheme.parameters.ciphertextByteCount, from: &rest)
                    guard let kemEphemeralKey else { throw NoiseError.missingKey("this side's KEM key for ekem1") }
                    // An altered ciphertext of the right length does not throw here (ML-KEM's
                    // implicit rejection): it yields another secret, and the payload's tag fails.
                    guard let secret = try? kemEphemeralKey.decapsulate(ciphertext) else { throw NoiseError.invalidKEMKey }
                    symmetric.mixKey(secret)
                    self.kemEphemeralKey = nil
                default:
                    try mixDH(token)
                }
            }
            let payload = try symmetric.decryptAndHash(Array(rest))
            messageIndex += 1
            return payload
        } catch {
            failed = true
            throw error
        }
    }

    /// Reads a field sent "as a static key": `length` bytes, plus a 16-byte tag once a key is
    /// set, checked against what is left before anything is read, then DecryptAndHash.
    private mutating func readEncrypted(_ length: Int, from rest: inout ArraySlice<UInt8>) throws(NoiseError) -> [UInt8] {
        let fieldLength = length + (symmetric.cipher.hasKey ? ChaChaPoly.tagByteCount : 0)
        guard rest.count >= fieldLength else { throw .badLength }
        let bytes = try symmetric.decryptAndHash(Array(rest.prefix(fieldLength)))
        rest = rest.dropFirst(fieldLength)
        return bytes
    }

    /// ee, es, se, ss: the first letter is the initiator's key, the second the responder's.
    private mutating func mixDH(_ token: NoisePattern.Token) throws(NoiseError) {
        let initiatorEphemeral = token == .ee || token == .es
        let responderEphemeral = token == .ee || token == .se
        let mine: AgreementPrivateKey?
        let theirs: AgreementPublicKey?
        if role == .initiator {
            mine = initiatorEphemeral ? ephemeralKey : staticKey
            theirs = responderEphemeral ? remoteEphemeralKey : remoteStaticKey
        } else {
            mine = responderEphemeral ? ephemeralKey : staticKey
            theirs = initiatorEphemeral ? remoteEphemeralKey : remoteStaticKey
        }
        guard let mine, let theirs else { throw .missingKey("a key for \(token)") }
        guard let shared = try? mine.sharedSecret(with: theirs) else { throw .weakKey }
        symmetric.mixKey(shared)
    }

    /// The transport cipher states, once the handshake is complete: `send` for this side's
    /// messages, `receive` for the peer's.
    public func split() -> NoiseTransport? {
        guard isComplete, !failed else { return nil }
        let (initiatorToResponder, responderToInitiator) = symmetric.split()
        return role == .initiator
            ? NoiseTransport(send: initiatorToResponder, receive: responderToInitiator, handshakeHash: handshakeHash, remoteStaticKey: remoteStaticKey)
            : NoiseTransport(send: responderToInitiator, receive: initiatorToResponder, handshakeHash: handshakeHash, remoteStaticKey: remoteStaticKey)
    }
}

/// The two directions of an established Noise session.
public struct NoiseTransport: Sendable {
    public var send: CipherState
    public var receive: CipherState
    public let handshakeHash: [UInt8]
    /// The peer's static key, as the handshake authenticated it.
    public let remoteStaticKey: AgreementPublicKey?

    public mutating func encrypt(_ plaintext: [UInt8]) throws(NoiseError) -> [UInt8] {
        try send.encrypt(associatedData: [], plaintext: plaintext)
    }

    public mutating func decrypt(_ ciphertext: [UInt8]) throws(NoiseError) -> [UInt8] {
        try receive.decrypt(associatedData: [], ciphertext: ciphertext)
    }
}
