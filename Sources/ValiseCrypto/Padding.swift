import CSodium

/// ISO/IEC 7816-4 padding (libsodium's `sodium_pad`/`sodium_unpad`): a 0x80 byte, then
/// zero bytes, up to a multiple of the block size. Used to hide a message's length inside
/// a size bucket.
public enum Padding {
    /// `bytes` padded to the next multiple of `blockSize` (at least one byte is added).
    public static func pad(_ bytes: [UInt8], toMultipleOf blockSize: Int) -> [UInt8] {
        var buffer = bytes
        pad(&buffer, toMultipleOf: blockSize)
        return buffer
    }

    /// Pads `bytes` in place (no new buffer if its capacity already holds the padding).
    public static func pad(_ bytes: inout [UInt8], toMultipleOf blockSize: Int) {
        precondition(blockSize > 0, "padding block size must be positive")
        let count = bytes.count
        let total = (count / blockSize + 1) * blockSize
        bytes.append(contentsOf: repeatElement(0, count: total - count))
        var padded = 0
        let rc = bytes.withUnsafeMutableBufferPointer { out in
            sodium_pad(&padded, out.baseAddress!, count, blockSize, total)
        }
        precondition(rc == 0 && padded == total, "sodium_pad failed")
    }

    /// The bytes before the padding; throws `.invalidParameter` if the padding is not valid.
    public static func unpad(_ bytes: [UInt8], blockSize: Int) throws(CryptoError) -> [UInt8] {
        var buffer = bytes
        try unpad(&buffer, blockSize: blockSize)
        return buffer
    }

    /// Removes the padding in place; throws `.invalidParameter`, leaving `bytes` as they
    /// were, if the padding is not valid.
    public static func unpad(_ bytes: inout [UInt8], blockSize: Int) throws(CryptoError) {
        guard blockSize > 0, !bytes.isEmpty, bytes.count % blockSize == 0 else { throw .invalidParameter("padding") }
        var unpadded = 0
        let rc = withBytes(bytes) { b, count in sodium_unpad(&unpadded, b, count, blockSize) }
        guard rc == 0 else { throw .invalidParameter("padding") }
        bytes.removeLast(bytes.count - unpadded)
    }
}
