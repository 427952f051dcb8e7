public import ValiseCrypto

/// Proof of a directory fork, kept for the key administrator: two validly signed
/// statements that give one sequence number different heads — an admin-signed entry of the
/// device's own log and a checkpoint signed by the organisation's checkpoint key, or two
/// checkpoints. Anyone holding the organisation's genesis can check it again.
///
/// File (docs/PROTOCOL.md, "Fork evidence"): `"VALISEFE" ‖ u8 1 ‖ u64 sequence ‖ u64 found
/// (Unix seconds, the device's clock) ‖ u8 2 ‖ 2 × (u8 kind (1 entry, 2 checkpoint) ‖
/// u32 length ‖ the statement's own encoding)`.
public struct ForkEvidence: Sendable, Equatable {
    public enum Statement: Sendable, Equatable {
        case entry(DirectoryEntry)
        case checkpoint(Checkpoint)

        var code: UInt8 {
            switch self {
            case .entry: 1
            case .checkpoint: 2
            }
        }

        var encoded: [UInt8] {
            switch self {
            case .entry(let entry): entry.encoded()
            case .checkpoint(let checkpoint): checkpoint.encoded()
            }
        }
    }

    static let fileMagic = Array("VALISEFE".utf8)
    static let version: UInt8 = 1

    public let sequence: UInt64
    public let found: UInt64
    public let statements: [Statement]

    public init(sequence: UInt64, found: UInt64, statements: [Statement]) {
        precondition(statements.count == 2, "a fork takes two statements")
        self.sequence = sequence
        self.found = found
        self.statements = statements
    }

    public func fileBytes() -> [UInt8] {
        var writer = ByteWriter()
        writer.write(Self.fileMagic)
        writer.write(Self.version)
        writer.write(sequence)
        writer.write(found)
        writer.write(UInt8(statements.count))
        for statement in statements {
            let bytes = statement.encoded
            writer.write(statement.code)
            writer.write(UInt32(bytes.count))
            writer.write(bytes)
        }
        return writer.bytes
    }

    public init(fileBytes bytes: [UInt8]) throws(FormatError) {
        self = try ByteReader.read(bytes, context: "fork evidence") { (reader, _) throws(FormatError) -> ForkEvidence in
            try reader.expectMagic(Self.fileMagic, version: Self.version, what: "Valise fork evidence")
            let sequence = try reader.readUInt64()
            let found = try reader.readUInt64()
            guard try reader.readUInt8() == 2 else { throw .invalid(reader.context, "it must hold two statements") }
            var statements: [Statement] = []
            for _ in 0..<2 {
                let code = try reader.readUInt8()
                let length = Int(try reader.readUInt32())
                guard length <= DirectoryEntry.maximumBodyByteCount * 2 else { throw .invalid(reader.context, "a statement is too long") }
                let statement = try reader.readBytes(length)
                switch code {
                case 1: statements.append(.entry(try DirectoryEntry(decoding: statement)))
                case 2: statements.append(.checkpoint(try Checkpoint(decoding: statement)))
                default: throw .invalid(reader.context, "unknown statement kind \(code)")
                }
            }
            try reader.expectEnd()
            return ForkEvidence(sequence: sequence, found: found, statements: statements)
        }
    }
}
