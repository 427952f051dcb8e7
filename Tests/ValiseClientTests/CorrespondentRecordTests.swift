import Testing
import ValiseClient
import ValiseCrypto

/// What a device keeps about a correspondent: version 3 holds an X-Wing envelope key (or
/// none yet); versions 1 and 2 held an X25519 one, which is read and dropped, so the X-Wing
/// key is fetched before the next message.
@Suite("Correspondent records")
struct CorrespondentRecordTests {
    let identity = SigningKey().publicKey

    @Test("version 3 round-trips with an envelope key and without one")
    func roundTrip() throws {
        let key = XWingPrivateKey().publicKey
        for envelopeKey in [key, nil] {
            let record = Correspondent(name: "bob@nairobi", identityKey: identity, envelopeKey: envelopeKey, envelopeKeyFetchedAt: 1_800_000_000, session: nil)
            let read = try Correspondent(stored: record.stored)
            #expect(read.name == "bob@nairobi" && read.identityKey == identity)
            #expect(read.envelopeKey == envelopeKey && read.envelopeKeyFetchedAt == 1_800_000_000)
            #expect(read.session == nil && read.previousSessions.isEmpty)
        }
    }

    @Test("a version 2 record is read without its X25519 envelope key, which is due again at once")
    func versionTwo() throws {
        var writer = ByteWriter()
        writer.write(UInt8(2))
        writer.writeString("bob@nairobi")
        writer.write(identity.bytes)
        writer.write(AgreementPrivateKey().publicKey.bytes)
        writer.write(UInt64(1_800_000_000))
        writer.write(UInt8(0))  // no session
        writer.write(UInt8(0))  // no earlier ones
        let read = try Correspondent(stored: SecretBytes(copying: writer.bytes))
        #expect(read.envelopeKey == nil && read.envelopeKeyFetchedAt == 0 && read.identityKey == identity)
        // A version 3 record with a short or malformed key, or an unknown version, is damage.
        var damaged = Array(try #require(Correspondent(
            name: "bob@nairobi", identityKey: identity, envelopeKey: XWingPrivateKey().publicKey, envelopeKeyFetchedAt: 1, session: nil
        ).stored.withUnsafeBytes { Array($0) }))
        damaged.removeLast(9)
        #expect(throws: ClientError.self) { try Correspondent(stored: SecretBytes(copying: damaged)) }
        #expect(throws: ClientError.self) { try Correspondent(stored: SecretBytes(copying: [4] + writer.bytes.dropFirst())) }
    }

    @Test("a version 2 record with X3DH sessions (stored format 1) is read without them: the next message starts a PQXDH session")
    func versionTwoSessionsDropped() throws {
        // Stored sessions of format 1, as a device before issue 16 wrote them (their insides
        // are not read: PQXDH does not continue them).
        let oldSession = [UInt8(1)] + [UInt8](repeating: 0xA5, count: 300)
        var writer = ByteWriter()
        writer.write(UInt8(2))
        writer.writeString("bob@nairobi")
        writer.write(identity.bytes)
        writer.write(AgreementPrivateKey().publicKey.bytes)
        writer.write(UInt64(1_800_000_000))
        writer.write(UInt8(1))  // a session
        writer.write(UInt32(oldSession.count))
        writer.write(oldSession)
        writer.write(UInt8(2))  // two earlier ones
        for _ in 0..<2 {
            writer.write(UInt32(oldSession.count))
            writer.write(oldSession)
        }
        let read = try Correspondent(stored: SecretBytes(copying: writer.bytes))
        #expect(read.identityKey == identity && read.envelopeKey == nil)
        #expect(read.session == nil && read.previousSessions.isEmpty)
        // A version 3 record holding such a session is damage, not an old record.
        var damaged = writer.bytes
        damaged[0] = 3
        #expect(throws: ClientError.self) { try Correspondent(stored: SecretBytes(copying: damaged)) }
    }
}
