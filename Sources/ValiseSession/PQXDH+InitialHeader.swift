public import ValiseCrypto

extension PQXDH {
    /// What the initiator sends with its first messages so that the responder can compute
    /// the same secret: the X25519 keys, which KEM prekey was used and the KEM ciphertext.
    public struct InitialHeader: Sendable, Equatable {
        public let identityKey: SigningPublicKey
        public let ephemeralKey: AgreementPublicKey
        public let signedPrekey: AgreementPublicKey
        public let oneTimePrekey: AgreementPublicKey?
        /// SHA-256 of the KEM prekey's encapsulation key (32 bytes).
        public let kemPrekeyID: [UInt8]
        /// The ML-KEM-1024 ciphertext (1568 bytes).
        public let kemCiphertext: [UInt8]

        public init(
            identityKey: SigningPublicKey, ephemeralKey: AgreementPublicKey, signedPrekey: AgreementPublicKey, oneTimePrekey: AgreementPublicKey?,
            kemPrekeyID: [UInt8], kemCiphertext: [UInt8]
        ) {
            precondition(kemPrekeyID.count == PQXDH.kemPrekeyIDByteCount && kemCiphertext.count == PQXDH.kemCiphertextByteCount)
            self.identityKey = identityKey
            self.ephemeralKey = ephemeralKey
            self.signedPrekey = signedPrekey
            self.oneTimePrekey = oneTimePrekey
            self.kemPrekeyID = kemPrekeyID
            self.kemCiphertext = kemCiphertext
        }

        /// The encoded header's length for its first (flags) byte: 1697, or 1729 with a
        /// one-time prekey.
        public static func encodedByteCount(flags: UInt8) -> Int {
            1 + 32 * 3 + (flags & 1 == 1 ? 32 : 0) + PQXDH.kemPrekeyIDByteCount + PQXDH.kemCiphertextByteCount
        }

        /// The longest encoded header (with a one-time prekey).
        public static let maximumByteCount = encodedByteCount(flags: 1)

        /// SPK ‖ EK ‖ KEM prekey id: what a responder records to refuse a replayed start of a
        /// session that consumed no one-time prekey (neither X25519 nor KEM: the signed
        /// prekey with the last-resort KEM prekey).
        public var replayKey: [UInt8] { signedPrekey.bytes + ephemeralKey.bytes + kemPrekeyID }

        /// `u8 flags (bit 0: a one-time prekey follows) ‖ IK (32, Ed25519) ‖ EK (32) ‖ SPK (32)
        /// [‖ OPK (32)] ‖ KEM prekey id (32) ‖ KEM ciphertext (1568)`.
        public var encoded: [UInt8] {
            var writer = ByteWriter(capacity: Self.maximumByteCount)
            writer.write(UInt8(oneTimePrekey == nil ? 0 : 1))
            writer.write(identityKey.bytes)
            writer.write(ephemeralKey.bytes)
            writer.write(signedPrekey.bytes)
            if let oneTimePrekey { writer.write(oneTimePrekey.bytes) }
            writer.write(kemPrekeyID)
            writer.write(kemCiphertext)
            return writer.bytes
        }

        public init(decoding bytes: [UInt8]) throws(SessionError) {
            do {
                self = try ByteReader.read(bytes, context: "PQXDH initial header") { (reader, _) throws(FormatError) in
                    let flags = try reader.readUInt8()
                    guard flags & ~1 == 0 else { throw .invalid("PQXDH initial header", "unknown flags") }
                    let identity = try reader.readBytes(32)
                    let ephemeral = try reader.readBytes(32)
                    let signed = try reader.readBytes(32)
                    let oneTime = flags & 1 == 1 ? try reader.readBytes(32) : nil
                    let kemPrekeyID = try reader.readBytes(PQXDH.kemPrekeyIDByteCount)
                    let kemCiphertext = try reader.readBytes(PQXDH.kemCiphertextByteCount)
                    try reader.expectEnd()
                    do {
                        return InitialHeader(
                            identityKey: try SigningPublicKey(bytes: identity), ephemeralKey: try AgreementPublicKey(bytes: ephemeral),
                            signedPrekey: try AgreementPublicKey(bytes: signed),
                            oneTimePrekey: try oneTime.map { (b) throws(CryptoError) in try AgreementPublicKey(bytes: b) },
                            kemPrekeyID: kemPrekeyID, kemCiphertext: kemCiphertext)
                    } catch {
                        throw .invalid("PQXDH initial header", "a key is not usable")
                    }
                }
            } catch {
                throw .malformed("the PQXDH initial header")
            }
        }
    }
}
