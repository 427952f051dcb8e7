/// Builds a public byte format: big-endian integers and length-prefixed fields.
public struct ByteWriter {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    public mutating func write(_ value: UInt8) { bytes.append(value) }
    public mutating func write(_ value: UInt16) { appendBigEndian(value) }
    public mutating func write(_ value: UInt32) { appendBigEndian(value) }
    public mutating func write(_ value: UInt64) { appendBigEndian(value) }
    public mutating func write(_ data: [UInt8]) { bytes.append(contentsOf: data) }
    /// A string's UTF-8 bytes, without a length (the caller writes one first).
    public mutating func write(_ text: String.UTF8View) { bytes.append(contentsOf: text) }

    /// A u16 length then the UTF-8 bytes; the caller has bounded the string.
    public mutating func writeString(_ text: String) {
        let utf8 = Array(text.utf8)
        precondition(utf8.count <= Int(UInt16.max), "string too long for a u16 length")
        write(UInt16(utf8.count))
        write(utf8)
    }

    private mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }
}

/// Fills guarded memory with a byte format, for payloads that hold secrets.
public struct SecretWriter {
    private let buffer: UnsafeMutableRawBufferPointer
    public private(set) var offset = 0

    public init(_ buffer: UnsafeMutableRawBufferPointer) { self.buffer = buffer }

    private mutating func put(_ source: UnsafeRawBufferPointer) {
        precondition(offset + source.count <= buffer.count, "secret payload larger than computed")
        if source.count > 0 {
            (buffer.baseAddress! + offset).copyMemory(from: source.baseAddress!, byteCount: source.count)
        }
        offset += source.count
    }

    public mutating func write(_ value: UInt8) { withUnsafeBytes(of: value) { put($0) } }
    public mutating func write(_ value: UInt16) { withUnsafeBytes(of: value.bigEndian) { put($0) } }
    public mutating func write(_ value: UInt32) { withUnsafeBytes(of: value.bigEndian) { put($0) } }
    public mutating func write(_ value: UInt64) { withUnsafeBytes(of: value.bigEndian) { put($0) } }
    public mutating func write(_ data: [UInt8]) { data.withUnsafeBytes { put($0) } }
    public mutating func write(_ secret: SecretBytes) { secret.withUnsafeBytes { put($0) } }
    public mutating func writeString(_ text: String) {
        let utf8 = Array(text.utf8)
        precondition(utf8.count <= Int(UInt16.max), "string too long for a u16 length")
        write(UInt16(utf8.count))
        write(utf8)
    }

    /// Checks that the computed size was exactly filled.
    public func finish() { precondition(offset == buffer.count, "secret payload smaller than computed") }
}
