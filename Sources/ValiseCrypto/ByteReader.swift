/// Reads big-endian integers and length-prefixed fields from untrusted bytes, checking each
/// length against what is left and against a stated maximum. It borrows the buffer: use it
/// only inside the `withUnsafeBytes` call that provides it.
public struct ByteReader {
    private let buffer: UnsafeRawBufferPointer
    public private(set) var offset: Int = 0
    /// What is being read, for error messages ("keystore", "directory entry 7").
    public var context: String

    public init(_ buffer: UnsafeRawBufferPointer, context: String) {
        self.buffer = buffer
        self.context = context
    }

    public var remainingCount: Int { buffer.count - offset }
    public var isAtEnd: Bool { offset == buffer.count }

    private mutating func take(_ count: Int) throws(FormatError) -> UnsafeRawBufferPointer {
        guard count >= 0, count <= remainingCount else { throw .truncated(context) }
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: buffer[offset..<(offset + count)])
    }

    public mutating func readUInt8() throws(FormatError) -> UInt8 {
        try take(1)[0]
    }

    public mutating func readUInt16() throws(FormatError) -> UInt16 {
        try take(2).reduce(0) { $0 << 8 | UInt16($1) }
    }

    public mutating func readUInt32() throws(FormatError) -> UInt32 {
        try take(4).reduce(0) { $0 << 8 | UInt32($1) }
    }

    public mutating func readUInt64() throws(FormatError) -> UInt64 {
        try take(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    public mutating func readBytes(_ count: Int) throws(FormatError) -> [UInt8] {
        Array(try take(count))
    }

    /// Copies `count` bytes straight into guarded memory.
    public mutating func readSecret(_ count: Int) throws(FormatError) -> SecretBytes {
        let source = try take(count)
        return SecretBytes(count: count) { out in
            if count > 0 { out.baseAddress!.copyMemory(from: source.baseAddress!, byteCount: count) }
        }
    }

    /// A u16 length, then that many bytes, which must be valid UTF-8 of at most `maximum` bytes.
    public mutating func readString(maximumByteCount maximum: Int, field: String) throws(FormatError) -> String {
        let length = Int(try readUInt16())
        guard length <= maximum else { throw .invalid(context, "\(field) is longer than \(maximum) bytes") }
        let bytes = try take(length)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw .invalid(context, "\(field) is not valid UTF-8")
        }
        return text
    }

    /// Fails unless every byte has been read.
    public func expectEnd() throws(FormatError) {
        guard isAtEnd else { throw .trailingBytes(context) }
    }
}

extension ByteReader {
    /// Runs `body` with a reader over `bytes` (and the raw buffer, for keeping slices), with
    /// typed errors (`Array.withUnsafeBytes` rethrows untyped).
    public static func read<R>(
        _ bytes: [UInt8], context: String,
        _ body: (inout ByteReader, UnsafeRawBufferPointer) throws(FormatError) -> R
    ) throws(FormatError) -> R {
        let result: Result<R, FormatError> = bytes.withUnsafeBytes { raw in
            var reader = ByteReader(raw, context: context)
            do throws(FormatError) {
                return .success(try body(&reader, raw))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }
}
