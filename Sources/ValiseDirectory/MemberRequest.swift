public import ValiseCrypto

/// What a member's device gives an administrator: its new public keys, signed by the new
/// identity key (proof that the device holds it), and for a rotation also by the old one.
///
/// Statement bytes (docs/PROTOCOL.md, "Requests"):
/// - enrollment: `u8 1 ‖ str16 member ‖ identity key ‖ transport key ‖ u64 created`
/// - rotation:   `u8 2 ‖ str16 member ‖ old identity key ‖ new identity key ‖ new transport key ‖ u64 created`
public struct MemberRequest: Hashable, Sendable {
    public enum Kind: UInt8, Sendable {
        case enrollment = 1
        case rotation = 2
    }

    public let member: MemberName
    /// The key being replaced (rotations only).
    public let oldIdentityKey: SigningPublicKey?
    public let identityKey: SigningPublicKey
    public let transportKey: AgreementPublicKey
    public let created: UInt64
    /// By `identityKey`.
    public let signature: Signature
    /// By `oldIdentityKey` (rotations only).
    public let oldKeySignature: Signature?

    public var kind: Kind { oldIdentityKey == nil ? .enrollment : .rotation }
    public var purpose: SignaturePurpose { kind == .enrollment ? .enrollmentRequest : .rotationRequest }

    public static func statement(
        member: MemberName, oldIdentityKey: SigningPublicKey?, identityKey: SigningPublicKey,
        transportKey: AgreementPublicKey, created: UInt64
    ) -> [UInt8] {
        var writer = ByteWriter()
        writer.write(oldIdentityKey == nil ? Kind.enrollment.rawValue : Kind.rotation.rawValue)
        writer.writeString(member.value)
        if let oldIdentityKey { writer.write(oldIdentityKey.bytes) }
        writer.write(identityKey.bytes)
        writer.write(transportKey.bytes)
        writer.write(created)
        return writer.bytes
    }

    public var statement: [UInt8] {
        Self.statement(
            member: member, oldIdentityKey: oldIdentityKey, identityKey: identityKey, transportKey: transportKey,
            created: created)
    }

    /// Makes and signs an enrollment request with a new device's identity key.
    public static func enrollment(
        member: MemberName, identityKey: SigningKey, transportKey: AgreementPublicKey, created: UInt64
    ) -> MemberRequest {
        let statement = statement(
            member: member, oldIdentityKey: nil, identityKey: identityKey.publicKey, transportKey: transportKey,
            created: created)
        return MemberRequest(
            member: member, oldIdentityKey: nil, identityKey: identityKey.publicKey, transportKey: transportKey,
            created: created, signature: identityKey.signature(for: statement, purpose: .enrollmentRequest),
            oldKeySignature: nil)
    }

    /// Makes a rotation request signed by both the old and the new identity key.
    public static func rotation(
        member: MemberName, oldIdentityKey: SigningKey, newIdentityKey: SigningKey,
        newTransportKey: AgreementPublicKey, created: UInt64
    ) -> MemberRequest {
        let statement = statement(
            member: member, oldIdentityKey: oldIdentityKey.publicKey, identityKey: newIdentityKey.publicKey,
            transportKey: newTransportKey, created: created)
        return MemberRequest(
            member: member, oldIdentityKey: oldIdentityKey.publicKey, identityKey: newIdentityKey.publicKey,
            transportKey: newTransportKey, created: created,
            signature: newIdentityKey.signature(for: statement, purpose: .rotationRequest),
            oldKeySignature: oldIdentityKey.signature(for: statement, purpose: .rotationRequest))
    }

    public init(
        member: MemberName, oldIdentityKey: SigningPublicKey?, identityKey: SigningPublicKey,
        transportKey: AgreementPublicKey, created: UInt64, signature: Signature, oldKeySignature: Signature?
    ) {
        self.member = member
        self.oldIdentityKey = oldIdentityKey
        self.identityKey = identityKey
        self.transportKey = transportKey
        self.created = created
        self.signature = signature
        self.oldKeySignature = oldKeySignature
    }

    /// Whether every signature the request carries is valid.
    public var isValid: Bool {
        let statement = statement
        guard identityKey.isValidSignature(signature, for: statement, purpose: purpose) else { return false }
        if let oldIdentityKey {
            guard let oldKeySignature,
                  oldIdentityKey.isValidSignature(oldKeySignature, for: statement, purpose: .rotationRequest) else {
                return false
            }
        }
        return true
    }

    /// The fingerprint the member reads out (`valise whoami`), for the admin to compare.
    public var fingerprint: Fingerprint { Fingerprint(identityKey: identityKey, memberName: member.value) }
}

extension MemberRequest {
    static let fileMagic = Array("VALISERQ".utf8)
    static let fileVersion: UInt8 = 1
    public static let maximumFileByteCount = 4096

    /// The request file: magic `VALISERQ` ‖ u8 version ‖ statement ‖ signature ‖ [old-key signature].
    public func fileBytes() -> [UInt8] {
        var writer = ByteWriter()
        writer.write(Self.fileMagic)
        writer.write(Self.fileVersion)
        writer.write(statement)
        writer.write(signature.bytes)
        if let oldKeySignature { writer.write(oldKeySignature.bytes) }
        return writer.bytes
    }

    var armorLabel: Armor.Label { kind == .enrollment ? .enrollmentRequest : .rotationRequest }

    /// The text form `valise` writes: the binary form armored (docs/PROTOCOL.md, "Armor").
    public func armoredFileBytes() -> [UInt8] {
        let comment = kind == .enrollment
            ? "enrollment request for \(member), fingerprint \(fingerprint)"
            : "rotation request for \(member), new fingerprint \(fingerprint)"
        return Armor.encode(fileBytes(), label: armorLabel, comments: [comment])
    }

    /// Parses a request file, armored or binary, and checks its signatures. An armored
    /// request's label must name the kind its bytes hold.
    public init(fileBytes armoredOrBinary: [UInt8]) throws(FormatError) {
        let (label, bytes) = try Armor.binary(
            armoredOrBinary, labels: [.enrollmentRequest, .rotationRequest], what: "request")
        guard bytes.count <= Self.maximumFileByteCount else { throw .invalid("request", "file too large") }
        let context = "request"
        let request = try ByteReader.read(bytes, context: context) { (reader, raw) throws(FormatError) -> MemberRequest in
            try reader.expectMagic(Self.fileMagic, version: Self.fileVersion, what: "an enrollment or rotation request")
            guard let kind = Kind(rawValue: try reader.readUInt8()) else { throw .invalid(context, "unknown request kind") }
            let member = try reader.readMemberName()
            let old = kind == .rotation ? try reader.readSignatureCheckedKey() : nil
            let identity = try reader.readSignatureCheckedKey()
            let transport = try reader.readAgreementPublicKey()
            let created = try reader.readUInt64()
            let signature = try reader.readSignature()
            let oldSignature = kind == .rotation ? try reader.readSignature() : nil
            try reader.expectEnd()
            return MemberRequest(
                member: member, oldIdentityKey: old, identityKey: identity, transportKey: transport, created: created,
                signature: signature, oldKeySignature: oldSignature)
        }
        guard request.isValid else { throw .invalid(context, "its signature does not verify; the file was altered or not made by valise") }
        if let label, label != request.armorLabel {
            throw .invalid(context, "its BEGIN line says \(label), but the request inside is the other kind (\(request.armorLabel))")
        }
        self = request
    }
}
