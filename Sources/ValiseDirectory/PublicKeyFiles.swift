public import ValiseCrypto

/// An admin's public keys, made by `valise admin keygen` on the admin's own machine and
/// handed to whoever writes the genesis: magic `VALISEAP` ‖ u8 1 ‖ str16 name ‖ signing key ‖
/// transport key ‖ u64 created ‖ signature by the signing key (purpose `admin-public-key`)
/// over everything from the version byte to `created`.
public struct AdminPublicFile: Hashable, Sendable {
    static let magic = Array("VALISEAP".utf8)
    public let admin: AdminRecord
    public let created: UInt64
    public let signature: Signature

    static func statement(_ admin: AdminRecord, created: UInt64) -> [UInt8] {
        var writer = ByteWriter()
        writer.write(UInt8(1))
        writer.writeString(admin.name)
        writer.write(admin.signingKey.bytes)
        writer.write(admin.transportKey.bytes)
        writer.write(created)
        return writer.bytes
    }

    public init(name: String, signingKey: SigningKey, transportKey: AgreementPublicKey, created: UInt64) {
        admin = AdminRecord(name: name, signingKey: signingKey.publicKey, transportKey: transportKey)
        self.created = created
        signature = signingKey.signature(for: Self.statement(admin, created: created), purpose: .adminPublicKey)
    }

    public func fileBytes() -> [UInt8] { Self.magic + Self.statement(admin, created: created) + signature.bytes }

    /// The text form `valise` writes: the binary form armored (docs/PROTOCOL.md, "Armor").
    public func armoredFileBytes() -> [UInt8] {
        Armor.encode(fileBytes(), label: .adminPublicKey, comments: ["admin \(admin.name), fingerprint \(fingerprint)"])
    }

    /// Reads the armored or the binary form.
    public init(fileBytes armoredOrBinary: [UInt8]) throws(FormatError) {
        let bytes = try Armor.binary(armoredOrBinary, labels: [.adminPublicKey], what: "admin public-key file").bytes
        guard bytes.count <= 1024 else { throw .invalid("admin public-key file", "file too large") }
        self = try ByteReader.read(bytes, context: "admin public-key file") { (reader, raw) throws(FormatError) -> AdminPublicFile in
            try reader.expectMagic(Self.magic, version: 1, what: "a Valise admin public-key file")
            let name = try reader.readLabel(field: "admin name")
            let admin = AdminRecord(name: name, signingKey: try reader.readSigningPublicKey(), transportKey: try reader.readAgreementPublicKey())
            let created = try reader.readUInt64()
            let signature = try reader.readSignature()
            try reader.expectEnd()
            guard admin.signingKey.isValidSignature(signature, for: Self.statement(admin, created: created), purpose: .adminPublicKey) else {
                throw .invalid(reader.context, "its signature does not verify; the file was altered or not made by valise")
            }
            return AdminPublicFile(admin: admin, created: created, signature: signature)
        }
    }

    private init(admin: AdminRecord, created: UInt64, signature: Signature) {
        self.admin = admin
        self.created = created
        self.signature = signature
    }

    public var fingerprint: Fingerprint { Fingerprint(identityKey: admin.signingKey, memberName: admin.name) }
}

/// A relay's public keys, written by `valised init` for `valise admin add-relay`: magic
/// `VALISERP` ‖ u8 1 ‖ Noise static key ‖ signing key ‖ proof (the signing key's signature,
/// purpose `relay-public-key`, over the two keys).
public struct RelayPublicFile: Hashable, Sendable {
    static let magic = Array("VALISERP".utf8)
    public let noiseKey: AgreementPublicKey
    public let signingKey: SigningPublicKey
    public let proof: Signature

    public init(noiseKey: AgreementPublicKey, signingKey: SigningKey) {
        self.noiseKey = noiseKey
        self.signingKey = signingKey.publicKey
        self.proof = signingKey.signature(
            for: RelayRecord.proofStatement(noiseKey: noiseKey, signingKey: signingKey.publicKey), purpose: .relayPublicKey)
    }

    public func fileBytes() -> [UInt8] { Self.magic + [1] + noiseKey.bytes + signingKey.bytes + proof.bytes }

    /// The text form `valised init` writes: the binary form armored (docs/PROTOCOL.md, "Armor").
    public func armoredFileBytes() -> [UInt8] {
        Armor.encode(fileBytes(), label: .relayPublicKey, comments: ["relay noise key \(Hex.encode(noiseKey.bytes))"])
    }

    /// Reads the armored or the binary form.
    public init(fileBytes armoredOrBinary: [UInt8]) throws(FormatError) {
        let bytes = try Armor.binary(armoredOrBinary, labels: [.relayPublicKey], what: "relay public-key file").bytes
        guard bytes.count <= 1024 else { throw .invalid("relay public-key file", "file too large") }
        let (noise, signing, proof) = try ByteReader.read(bytes, context: "relay public-key file") { (reader, raw) throws(FormatError) -> (AgreementPublicKey, SigningPublicKey, Signature) in
            try reader.expectMagic(Self.magic, version: 1, what: "a Valise relay public-key file")
            let result = (try reader.readAgreementPublicKey(), try reader.readSigningPublicKey(), try reader.readSignature())
            try reader.expectEnd()
            return result
        }
        guard signing.isValidSignature(proof, for: RelayRecord.proofStatement(noiseKey: noise, signingKey: signing), purpose: .relayPublicKey) else {
            throw .invalid("relay public-key file", "its signature does not verify; the file was altered or not made by valised")
        }
        self.noiseKey = noise
        self.signingKey = signing
        self.proof = proof
    }

    public func record(name: String, address: String) -> RelayRecord {
        RelayRecord(name: name, address: address, noiseKey: noiseKey, signingKey: signingKey, proof: proof)
    }
}
