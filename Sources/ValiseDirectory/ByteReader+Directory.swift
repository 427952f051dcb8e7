public import ValiseCrypto

// Typed reads for the directory's formats; each checks its value as it reads it.
extension ByteReader {
    public mutating func expectMagic(_ magic: [UInt8], version: UInt8, what: String) throws(FormatError) {
        guard remainingCount >= magic.count, try readBytes(magic.count) == magic else {
            throw .invalid(context, "not \(what)")
        }
        let found = try readUInt8()
        guard found == version else { throw .unsupportedVersion(context, Int(found)) }
    }

    public mutating func readSigningPublicKey() throws(FormatError) -> SigningPublicKey {
        do {
            return try SigningPublicKey(bytes: readBytes(SigningPublicKey.byteCount))
        } catch let error as FormatError {
            throw error
        } catch {
            throw .invalid(context, "an Ed25519 public key is not valid")
        }
    }

    /// An Ed25519 key that only ever verifies signatures, or must equal a key already
    /// validated (signers, requests' keys, relay keys): see
    /// `SigningPublicKey(bytesCheckedBySignature:)`.
    public mutating func readSignatureCheckedKey() throws(FormatError) -> SigningPublicKey {
        let bytes = try readBytes(SigningPublicKey.byteCount)
        return try! SigningPublicKey(bytesCheckedBySignature: bytes)
    }

    // The lengths are read first (a short buffer throws); the `try!` only covers the
    // length check of a value that has exactly the right length.
    public mutating func readAgreementPublicKey() throws(FormatError) -> AgreementPublicKey {
        let bytes = try readBytes(AgreementPublicKey.byteCount)
        return try! AgreementPublicKey(bytes: bytes)
    }

    public mutating func readSignature() throws(FormatError) -> Signature {
        let bytes = try readBytes(Signature.byteCount)
        return try! Signature(bytes: bytes)
    }

    public mutating func readHash() throws(FormatError) -> EntryHash {
        EntryHash(uncheckedBytes: try readBytes(EntryHash.byteCount))
    }

    public mutating func readMemberName() throws(FormatError) -> MemberName {
        let text = try readString(maximumByteCount: MemberName.maximumLength, field: "member name")
        do {
            return try MemberName(text)
        } catch {
            throw .invalid(context, error.message)
        }
    }

    /// A label (admin or relay name) following `NameRule`.
    public mutating func readLabel(field: String) throws(FormatError) -> String {
        let text = try readString(maximumByteCount: NameRule.maximumLength, field: field)
        do {
            try NameRule.checkLabel(text, what: field)
        } catch {
            throw .invalid(context, error.message)
        }
        return text
    }

    /// Free text for people, without control characters.
    public mutating func readText(field: String, maximum: Int) throws(FormatError) -> String {
        let text = try readString(maximumByteCount: maximum, field: field)
        do {
            try NameRule.checkText(text, what: field, maximum: maximum)
        } catch {
            throw .invalid(context, error.message)
        }
        return text
    }
}
