public import ValiseCrypto
public import ValiseSession

/// What the device keeps about one correspondent (sealed in the local store): the identity
/// key it last saw for them, their envelope key, and the session, if one exists.
///
///     u8 version (1) ‖ str16 name ‖ identity key 32 ‖ envelope key 32 ‖
///     u64 envelope key fetched at ‖ u8 has session ‖ [stored session]
public struct Correspondent: Sendable {
    public let name: String
    public var identityKey: SigningPublicKey
    public var envelopeKey: AgreementPublicKey
    public var envelopeKeyFetchedAt: UInt64
    public var session: Session?

    public init(name: String, identityKey: SigningPublicKey, envelopeKey: AgreementPublicKey, envelopeKeyFetchedAt: UInt64, session: Session?) {
        self.name = name
        self.identityKey = identityKey
        self.envelopeKey = envelopeKey
        self.envelopeKeyFetchedAt = envelopeKeyFetchedAt
        self.session = session
    }

    static let version: UInt8 = 1

    public var stored: SecretBytes {
        let session = self.session?.stored
        let name = Array(self.name.utf8)
        return SecretBytes(count: 1 + 2 + name.count + 32 + 32 + 8 + 1 + (session?.count ?? 0)) { buffer in
            var writer = SecretWriter(buffer)
            writer.write(Self.version)
            writer.writeString(self.name)
            writer.write(identityKey.bytes)
            writer.write(envelopeKey.bytes)
            writer.write(envelopeKeyFetchedAt)
            writer.write(UInt8(session == nil ? 0 : 1))
            if let session { writer.write(session) }
            writer.finish()
        }
    }

    public init(stored: SecretBytes) throws(ClientError) {
        let result = stored.withUnsafeBytes { raw -> Result<Correspondent, ClientError> in
            do throws(FormatError) {
                var reader = ByteReader(raw, context: "correspondent")
                guard try reader.readUInt8() == Self.version else { throw .invalid("correspondent", "version") }
                let name = try reader.readString(maximumByteCount: 256, field: "name")
                let identity = try reader.readBytes(32)
                let envelope = try reader.readBytes(32)
                let fetchedAt = try reader.readUInt64()
                let hasSession = try reader.readUInt8()
                var session: Session?
                if hasSession == 1 {
                    let rest = try reader.readSecret(reader.remainingCount)
                    guard let restored = try? Session(stored: rest) else { throw .invalid("correspondent", "the stored session") }
                    session = restored
                }
                try reader.expectEnd()
                guard let identityKey = try? SigningPublicKey(bytes: identity), let envelopeKey = try? AgreementPublicKey(bytes: envelope) else {
                    throw .invalid("correspondent", "a key")
                }
                return .success(Correspondent(name: name, identityKey: identityKey, envelopeKey: envelopeKey, envelopeKeyFetchedAt: fetchedAt, session: session))
            } catch {
                return .failure(.failure("store-damaged", "a correspondent's record in the message store cannot be read (\(error.message))"))
            }
        }
        self = try result.get()
    }
}

/// An outgoing item's record (sealed at rest in the outbox).
struct OutboxRecord: Codable {
    var to: String
    var text: String?
    /// Hex ids of the messages a receipt confirms.
    var receiptFor: [String]?
}

/// A received message's record (sealed at rest in the inbox).
struct InboxRecord: Codable {
    var from: String
    var sentAt: UInt64
    var text: String
    /// Set when the sender's keys differed from the ones this device knew.
    var keysChanged: Bool?
}
