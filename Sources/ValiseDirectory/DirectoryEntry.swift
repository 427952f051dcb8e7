public import ValiseCrypto

/// One admin signature on an entry.
public struct EntrySignature: Hashable, Sendable {
    public let signer: SigningPublicKey
    public let signature: Signature

    public init(signer: SigningPublicKey, signature: Signature) {
        self.signer = signer
        self.signature = signature
    }
}

/// An entry of the organisation directory: a versioned, sequenced, hash-chained, timestamped
/// body, and the admin signatures over it.
///
/// The signed part ("signed bytes") is everything but the signatures, so a late
/// co-signature does not change the entry's hash. Signatures are kept sorted by signer key
/// with no signer twice, so an entry with a given set of signatures has one encoding.
public struct DirectoryEntry: Hashable, Sendable {
    public static let version: UInt8 = 1
    /// Entries larger than this are refused (a body is at most a few hundred bytes).
    public static let maximumBodyByteCount = 16 * 1024
    public static let maximumSignatures = AdminSet.maximumAdmins

    public let sequence: UInt64
    public let previousHash: EntryHash
    /// Seconds since 1970 (UTC), on the proposing admin's clock.
    public let timestamp: UInt64
    public let body: EntryBody
    public let signatures: [EntrySignature]

    /// `u8 version ‖ u64 sequence ‖ previous hash ‖ u64 timestamp ‖ u8 kind ‖ u32 length ‖ body`.
    public let signedBytes: [UInt8]
    /// BLAKE2b-256 of `signedBytes`.
    public let hash: EntryHash

    /// A new, unsigned entry.
    public init(sequence: UInt64, previousHash: EntryHash, timestamp: UInt64, body: EntryBody) {
        var bodyWriter = ByteWriter()
        body.write(to: &bodyWriter)
        var writer = ByteWriter(capacity: 54 + bodyWriter.bytes.count)
        writer.write(Self.version)
        writer.write(sequence)
        writer.write(previousHash.bytes)
        writer.write(timestamp)
        writer.write(body.kind.rawValue)
        writer.write(UInt32(bodyWriter.bytes.count))
        writer.write(bodyWriter.bytes)
        self.init(
            sequence: sequence, previousHash: previousHash, timestamp: timestamp, body: body, signatures: [],
            signedBytes: writer.bytes)
    }

    private init(
        sequence: UInt64, previousHash: EntryHash, timestamp: UInt64, body: EntryBody, signatures: [EntrySignature],
        signedBytes: [UInt8]
    ) {
        self.sequence = sequence
        self.previousHash = previousHash
        self.timestamp = timestamp
        self.body = body
        self.signatures = signatures
        self.signedBytes = signedBytes
        self.hash = EntryHash.of(signedBytes)
    }

    /// This entry with `key`'s signature added (or replaced), kept in canonical order.
    public func signed(by key: SigningKey) -> DirectoryEntry {
        var signatures = self.signatures.filter { $0.signer != key.publicKey }
        signatures.append(EntrySignature(
            signer: key.publicKey, signature: key.signature(for: signedBytes, purpose: .directoryEntry)))
        signatures.sort { $0.signer.bytes.lexicographicallyPrecedes($1.signer.bytes) }
        return DirectoryEntry(
            sequence: sequence, previousHash: previousHash, timestamp: timestamp, body: body, signatures: signatures,
            signedBytes: signedBytes)
    }

    /// Whether `signature` is a valid signature of this entry by its signer.
    public func isValid(_ signature: EntrySignature) -> Bool {
        signature.signer.isValidSignature(signature.signature, for: signedBytes, purpose: .directoryEntry)
    }

    /// The entry's encoding: signed bytes ‖ u8 count ‖ count × (signer key ‖ signature).
    public func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: signedBytes.count + 1 + signatures.count * 96)
        writer.write(signedBytes)
        writer.write(UInt8(signatures.count))
        for signature in signatures {
            writer.write(signature.signer.bytes)
            writer.write(signature.signature.bytes)
        }
        return writer.bytes
    }

    /// Decodes one entry occupying all of `bytes`.
    public init(decoding bytes: [UInt8]) throws(FormatError) {
        self = try ByteReader.read(bytes, context: "directory entry") { (reader, raw) throws(FormatError) -> DirectoryEntry in
            let entry = try DirectoryEntry(reading: &reader, bytes: raw)
            try reader.expectEnd()
            return entry
        }
    }

    /// Decodes one entry from `reader`, which reads from `bytes`.
    init(reading reader: inout ByteReader, bytes: UnsafeRawBufferPointer) throws(FormatError) {
        let start = reader.offset
        let version = try reader.readUInt8()
        guard version == Self.version else { throw .unsupportedVersion("directory entry", Int(version)) }
        let sequence = try reader.readUInt64()
        reader.context = "directory entry \(sequence)"
        let previous = try reader.readHash()
        let timestamp = try reader.readUInt64()
        let kindCode = try reader.readUInt8()
        guard let kind = EntryBody.Kind(rawValue: kindCode) else {
            throw .invalid(reader.context, "unknown entry kind \(kindCode)")
        }
        let length = Int(try reader.readUInt32())
        guard length <= Self.maximumBodyByteCount else { throw .invalid(reader.context, "body larger than \(Self.maximumBodyByteCount) bytes") }
        guard length <= reader.remainingCount else { throw .truncated(reader.context) }
        let bodyStart = reader.offset
        let body = try EntryBody.read(kind: kind, from: &reader)
        guard reader.offset - bodyStart == length else {
            throw .invalid(reader.context, "body length does not match its contents")
        }
        let signedBytes = Array(bytes[start..<reader.offset])

        let count = Int(try reader.readUInt8())
        guard count <= Self.maximumSignatures else { throw .invalid(reader.context, "more than \(Self.maximumSignatures) signatures") }
        var signatures: [EntrySignature] = []
        signatures.reserveCapacity(count)
        for _ in 0..<count {
            let signature = EntrySignature(signer: try reader.readSignatureCheckedKey(), signature: try reader.readSignature())
            if let last = signatures.last, !last.signer.bytes.lexicographicallyPrecedes(signature.signer.bytes) {
                throw .invalid(reader.context, "signatures are not in canonical order (sorted by signer, each signer once)")
            }
            signatures.append(signature)
        }
        self.init(
            sequence: sequence, previousHash: previous, timestamp: timestamp, body: body, signatures: signatures,
            signedBytes: signedBytes)
    }
}
