public import ValiseCrypto

/// A freshness statement signed by the organisation's certified checkpoint key (held by an
/// admin-run timer, not the relay): "at `time`, the log's head was entry `sequence` with
/// hash `headHash`". Clients that see no recent checkpoint know they may be shown an old
/// directory (a revocation hidden from them).
///
/// Encoding: u8 version ‖ u64 sequence ‖ head hash ‖ u64 time ‖ key ‖ signature, where the
/// signature covers the first four fields with purpose `checkpoint`.
public struct Checkpoint: Hashable, Sendable {
    public static let version: UInt8 = 1
    public static let byteCount = 1 + 8 + 32 + 8 + 32 + 64
    static let fileMagic = Array("VALISECP".utf8)

    public let sequence: UInt64
    public let headHash: EntryHash
    public let time: UInt64
    public let key: SigningPublicKey
    public let signature: Signature

    public static func statement(sequence: UInt64, headHash: EntryHash, time: UInt64) -> [UInt8] {
        var writer = ByteWriter()
        writer.write(version)
        writer.write(sequence)
        writer.write(headHash.bytes)
        writer.write(time)
        return writer.bytes
    }

    /// Signs the head of a verified log.
    public init(sequence: UInt64, headHash: EntryHash, time: UInt64, signingKey: SigningKey) {
        self.sequence = sequence
        self.headHash = headHash
        self.time = time
        self.key = signingKey.publicKey
        self.signature = signingKey.signature(
            for: Self.statement(sequence: sequence, headHash: headHash, time: time), purpose: .checkpoint)
    }

    public func encoded() -> [UInt8] {
        Self.statement(sequence: sequence, headHash: headHash, time: time) + key.bytes + signature.bytes
    }

    init(reading reader: inout ByteReader) throws(FormatError) {
        let version = try reader.readUInt8()
        guard version == Self.version else { throw .unsupportedVersion("checkpoint", Int(version)) }
        sequence = try reader.readUInt64()
        headHash = try reader.readHash()
        time = try reader.readUInt64()
        // Compared with the certified key, never used unverified: no point check here.
        key = try reader.readSignatureCheckedKey()
        signature = try reader.readSignature()
    }

    /// Decodes a checkpoint's own encoding (as carried in bundles and relay messages).
    public init(decoding bytes: [UInt8]) throws(FormatError) {
        self = try ByteReader.read(bytes, context: "checkpoint") { (reader, _) throws(FormatError) -> Checkpoint in
            let checkpoint = try Checkpoint(reading: &reader)
            try reader.expectEnd()
            return checkpoint
        }
    }

    /// A checkpoint file: magic `VALISECP` ‖ u8 1 ‖ checkpoint.
    public func fileBytes() -> [UInt8] { Self.fileMagic + [1] + encoded() }

    public init(fileBytes bytes: [UInt8]) throws(FormatError) {
        self = try ByteReader.read(bytes, context: "checkpoint") { (reader, raw) throws(FormatError) -> Checkpoint in
            try reader.expectMagic(Self.fileMagic, version: 1, what: "a Valise checkpoint")
            let checkpoint = try Checkpoint(reading: &reader)
            try reader.expectEnd()
            return checkpoint
        }
    }

    /// Checks the checkpoint against a verified log, in this order (docs/PROTOCOL.md,
    /// "Checkpoints"): it names an entry this log has (a checkpoint ahead of the log means
    /// the log is behind); its key is the newest checkpoint key the log certifies, certified
    /// with a not-after (kind 9) at or before that entry; its time is not after that
    /// not-after; its signature verifies; the log's hash at that entry is the checkpoint's
    /// (else: a fork); its time is not before that entry's and not more than the allowed skew
    /// after `now`. Only the newest key counts, so a replaced key, even stolen, vouches for
    /// nothing once a device has seen its replacement; the not-after protects the others.
    public func verify(against verifier: DirectoryVerifier, now: UInt64) throws(DirectoryError) {
        func fail(_ rule: DirectoryError.Rule, _ detail: String) -> DirectoryError {
            DirectoryError(rule, sequence: nil, subject: "checkpoint of entry \(sequence)", detail)
        }
        guard let state = verifier.state else { throw fail(.checkpoint, "there is no verified log to check it against") }
        guard sequence < UInt64(verifier.count) else {
            throw fail(.checkpoint, "it names entry \(sequence), but this log ends at entry \(verifier.count - 1): fetch the newer entries")
        }
        guard let newest = state.checkpointKeys.last else {
            throw fail(.checkpoint, "the log certifies no checkpoint key")
        }
        guard newest.key == key else {
            throw fail(.checkpoint, "it is not signed by the newest checkpoint key the log certifies (entry \(newest.certifiedAt))")
        }
        guard let notAfter = newest.notAfter else {
            throw fail(.checkpoint, "its key was certified by entry \(newest.certifiedAt) without a not-after (kind 8), which no longer lets a key sign checkpoints; the administrators must certify a new checkpoint key")
        }
        guard newest.certifiedAt <= sequence else {
            throw fail(.checkpoint, "its key was certified at entry \(newest.certifiedAt), after the entry it vouches for")
        }
        guard time <= notAfter else {
            throw fail(.checkpoint, "it is dated \(time), after its key's not-after (\(notAfter))")
        }
        guard key.isValidSignature(signature, for: Self.statement(sequence: sequence, headHash: headHash, time: time), purpose: .checkpoint) else {
            throw fail(.checkpoint, "its signature does not verify")
        }
        guard verifier.hashes[Int(sequence)] == headHash else {
            throw fail(.fork, "the checkpoint says entry \(sequence) has hash \(headHash.short)…, this log has \(verifier.hashes[Int(sequence)].short)…; the log shown here differs from the organisation's — report this to your key administrators")
        }
        guard time >= verifier.timestamps[Int(sequence)] else {
            throw fail(.checkpoint, "it is dated before the entry it vouches for")
        }
        guard time <= now &+ DirectoryVerifier.maximumClockSkew else {
            throw fail(.checkpoint, "it is dated \(time - now) seconds after this machine's clock")
        }
    }

    /// Whether this checkpoint still counts against `verifier` (a log may have grown past a
    /// checkpoint: a newer checkpoint key makes the old key's checkpoints worthless). A
    /// fork is not "no longer counting": it throws, for the caller to report.
    public func counts(against verifier: DirectoryVerifier, now: UInt64) throws(DirectoryError) -> Bool {
        do {
            try verify(against: verifier, now: now)
            return true
        } catch where error.code == DirectoryError.Rule.fork.rawValue {
            throw error
        } catch {
            return false
        }
    }
}
