public import ValiseCrypto

extension SealedEnvelope {
    /// What the relay sees of an envelope, and what the HPKE AEAD authenticates as associated
    /// data: the recipient's mailbox (the member name a `Send` names), the id, the precedence
    /// and the TTL class the SENDER chose. A relay that relabels or re-routes an envelope
    /// changes the associated data, and the envelope no longer opens.
    public struct Labels: Sendable, Equatable {
        /// The associated data's own version, so that its layout can change apart from the contents'.
        public static let version: UInt8 = 1
        /// The member name (`person@mission`), 1 to 255 bytes of UTF-8 (the directory allows 129).
        public let mailbox: String
        public let id: [UInt8]
        /// 0 ROUTINE … 3 FLASH.
        public let precedence: UInt8
        /// 1 hour … 4 month: the class the sender asked for, never the one the relay applied.
        public let ttlClass: UInt8

        public init(mailbox: String, id: [UInt8], precedence: UInt8, ttlClass: UInt8) {
            self.mailbox = mailbox
            self.id = id
            self.precedence = precedence
            self.ttlClass = ttlClass
        }

        /// `u8 version (1) ‖ u8 name length ‖ name (UTF-8) ‖ id (16) ‖ u8 precedence ‖ u8 TTL class`,
        /// or nil when a field is out of its range (such labels are refused, never encoded).
        public var associatedData: [UInt8]? {
            let name = Array(mailbox.utf8)
            guard (1...255).contains(name.count), id.count == SealedEnvelope.idByteCount else { return nil }
            var writer = ByteWriter(capacity: 1 + 1 + name.count + id.count + 2)
            writer.write(Self.version)
            writer.write(UInt8(name.count))
            writer.write(name)
            writer.write(id)
            writer.write(precedence)
            writer.write(ttlClass)
            return writer.bytes
        }
    }

    /// This envelope's labels, for the mailbox it is sent to.
    public func labels(mailbox: String) -> Labels {
        Labels(mailbox: mailbox, id: id, precedence: precedence, ttlClass: ttlClass)
    }

    /// The identity key's signature over an X-Wing envelope key
    /// (`valise/v1/xwing-envelope-key`, 0x00, the 1,216-byte key).
    public static func signEnvelopeKey(_ key: XWingPublicKey, with identity: SigningKey) -> Signature {
        identity.signature(for: key.bytes, purpose: envelopeKeyPurpose)
    }

    public static func isValidEnvelopeKey(_ key: XWingPublicKey, signature: Signature, identity: SigningPublicKey) -> Bool {
        identity.isValidSignature(signature, for: key.bytes, purpose: envelopeKeyPurpose)
    }
}
