public import ValiseCrypto
public import ValiseSession
import Foundation
import ValiseStore

/// What the device keeps about one correspondent (sealed in the local store): the identity
/// key it last saw for them, their envelope key, the session in use, and up to three
/// earlier sessions (a session both sides started at once may still be in use by the peer).
///
///     u8 version (3) ‖ str16 name ‖ identity key 32 ‖ u8 has envelope key ‖
///     [X-Wing envelope key 1216] ‖ u64 envelope key fetched at ‖ u8 has session ‖
///     [u32 length ‖ stored session] ‖ u8 earlier count ‖ (u32 length ‖ stored session)…
///
/// Versions 1 and 2 held an X25519 envelope key (32 bytes, always present) and X3DH sessions
/// (stored format 1), which are read and dropped: the X-Wing key is fetched and a PQXDH
/// session started before the next message. Version 1 ends after the current session
/// (which takes the rest), with no earlier ones.
public struct Correspondent: Sendable {
    public static let maximumPreviousSessions = 3

    public let name: String
    public var identityKey: SigningPublicKey
    /// Nil until fetched (a correspondent who wrote first, or a record from before X-Wing).
    public var envelopeKey: XWingPublicKey?
    public var envelopeKeyFetchedAt: UInt64
    public var session: Session?
    public var previousSessions: [Session] = []

    public init(name: String, identityKey: SigningPublicKey, envelopeKey: XWingPublicKey?, envelopeKeyFetchedAt: UInt64, session: Session?, previousSessions: [Session] = []) {
        self.name = name
        self.identityKey = identityKey
        self.envelopeKey = envelopeKey
        self.envelopeKeyFetchedAt = envelopeKeyFetchedAt
        self.session = session
        self.previousSessions = previousSessions
    }

    /// A new session becomes current; the one it replaces is kept among the earlier ones.
    mutating func start(_ new: Session) {
        retireCurrentSession()
        session = new
    }

    /// No current session any more (this device's keys were rotated): the old one is kept
    /// among the earlier ones, to read what the peer still sends in it.
    mutating func retireCurrentSession() {
        guard let session else { return }
        previousSessions.insert(session, at: 0)
        previousSessions = Array(previousSessions.prefix(Self.maximumPreviousSessions))
        self.session = nil
    }

    /// `advanced` is candidate `index` (0: the current session) after decrypting: it is
    /// the session the peer uses, so it becomes (or stays) the current one.
    mutating func use(_ advanced: Session, from index: Int) {
        guard index > 0 else {
            session = advanced
            return
        }
        previousSessions.remove(at: index - 1)
        start(advanced)
    }

    static let version: UInt8 = 3

    public var stored: SecretBytes {
        let current = session?.stored
        let earlier = previousSessions.map(\.stored)
        let name = Array(self.name.utf8)
        let count = 1 + 2 + name.count + 32 + 1 + (envelopeKey?.bytes.count ?? 0) + 8 + 1 + (current.map { 4 + $0.count } ?? 0) + 1 + earlier.reduce(0) { $0 + 4 + $1.count }
        return SecretBytes(count: count) { buffer in
            var writer = SecretWriter(buffer)
            writer.write(Self.version)
            writer.writeString(self.name)
            writer.write(identityKey.bytes)
            writer.write(UInt8(envelopeKey == nil ? 0 : 1))
            if let envelopeKey { writer.write(envelopeKey.bytes) }
            writer.write(envelopeKeyFetchedAt)
            writer.write(UInt8(current == nil ? 0 : 1))
            if let current {
                writer.write(UInt32(current.count))
                writer.write(current)
            }
            writer.write(UInt8(earlier.count))
            for old in earlier {
                writer.write(UInt32(old.count))
                writer.write(old)
            }
            writer.finish()
        }
    }

    public init(stored: SecretBytes) throws(ClientError) {
        let result = stored.withUnsafeBytes { raw -> Result<Correspondent, ClientError> in
            do throws(FormatError) {
                var reader = ByteReader(raw, context: "correspondent")
                let version = try reader.readUInt8()
                guard (1...3).contains(version) else { throw .invalid("correspondent", "version") }
                let name = try reader.readString(maximumByteCount: 256, field: "name")
                let identity = try reader.readBytes(32)
                var envelope: [UInt8]?
                if version < 3 {
                    _ = try reader.readBytes(32)  // an X25519 envelope key: dropped
                } else if try reader.readUInt8() == 1 {
                    envelope = try reader.readBytes(XWingScheme.parameters.publicKeyByteCount)
                }
                let storedFetchedAt = try reader.readUInt64()
                // An X25519 key was dropped: the X-Wing one is due at once.
                let fetchedAt = version < 3 ? 0 : storedFetchedAt
                // Records before version 3 hold X3DH sessions (stored format 1), which PQXDH
                // does not continue: they are dropped, and the next message starts a session.
                let sessionsReadable = version >= 3
                let hasSession = try reader.readUInt8()
                var session: Session?
                var previous: [Session] = []
                if hasSession == 1 {
                    let length = version == 1 ? reader.remainingCount : Int(try reader.readUInt32())
                    let bytes = try reader.readSecret(length)
                    if sessionsReadable { session = try Self.session(bytes) }
                }
                if version >= 2 {
                    let count = Int(try reader.readUInt8())
                    guard count <= Self.maximumPreviousSessions else { throw .invalid("correspondent", "too many earlier sessions") }
                    for _ in 0..<count {
                        let bytes = try reader.readSecret(Int(try reader.readUInt32()))
                        if sessionsReadable { previous.append(try Self.session(bytes)) }
                    }
                }
                try reader.expectEnd()
                guard let identityKey = try? SigningPublicKey(bytes: identity) else { throw .invalid("correspondent", "a key") }
                var envelopeKey: XWingPublicKey?
                if let envelope {
                    guard let key = try? XWingPublicKey(bytes: envelope) else { throw .invalid("correspondent", "a key") }
                    envelopeKey = key
                }
                return .success(Correspondent(
                    name: name, identityKey: identityKey, envelopeKey: envelopeKey, envelopeKeyFetchedAt: fetchedAt, session: session, previousSessions: previous))
            } catch {
                return .failure(.failure("store-damaged", "a correspondent's record in the message store cannot be read (\(error.message))"))
            }
        }
        self = try result.get()
    }

    private static func session(_ bytes: SecretBytes) throws(FormatError) -> Session {
        guard let restored = try? Session(stored: bytes) else { throw .invalid("correspondent", "a stored session") }
        return restored
    }
}

/// An outgoing item's record (sealed at rest in the outbox).
struct OutboxRecord: Codable {
    var to: String
    var text: String?
    /// Hex ids of the messages a receipt confirms.
    var receiptFor: [String]?
    /// A circular's items: its id (hex, 16 bytes), shared by all of them, and the selector
    /// the sender wrote, which each recipient's message carries.
    var circular: String?
    var selector: String?
}

extension OutboxItem {
    /// Who it is for and what it says.
    func record() throws -> OutboxRecord {
        try JSONDecoder().decode(OutboxRecord.self, from: Data(data))
    }
}

extension LocalStore.Transaction {
    /// What this device keeps about `name`, or nil.
    func correspondentRecord(_ name: String) throws -> Correspondent? {
        try correspondent(name).map { try Correspondent(stored: $0) }
    }
}

/// A received message's record (sealed at rest in the inbox).
struct InboxRecord: Codable {
    var from: String
    var sentAt: UInt64
    var text: String
    /// Set when the sender's keys differed from the ones this device knew.
    var keysChanged: Bool?
    /// Set when the sender's directory head differed from this device's log.
    var directoryNote: DirectoryNote?
    /// The selector of the circular it was part of (the sender's words, as sent).
    var circular: String?
    /// The files that came with it (their keys and states are in the `attachment` table).
    var attachments: [InboxAttachmentRecord]?
}
