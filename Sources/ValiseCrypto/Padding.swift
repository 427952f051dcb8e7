import CSodium

/// ISO/IEC 7816-4 padding (libsodium's `sodium_pad`/`sodium_unpad`): a 0x80 byte, then
/// zero bytes, up to a multiple of the block size. Used to hide a message's length inside
/// a size bucket.
public enum Padding {
    /// `bytes` padded to the next multiple of `blockSize` (at least one byte is added).
    public static func pad(_ bytes: [UInt8], toMultipleOf blockSize: Int) -> [UInt8] {
        precondition(blockSize > 0, "padding block size must be positive")
        let total = (bytes.count / blockSize + 1) * blockSize
        var buffer = bytes + [UInt8](repeating: 0, count: total - bytes.count)
        var padded = 0
        let rc = buffer.withUnsafeMutableBufferPointer { out in
            sodium_pad(&padded, out.baseAddress!, bytes.count, blockSize, total)
        }
        precondition(rc == 0 && padded == total, "sodium_pad failed")
        return buffer
    }

    /// The bytes before the padding; throws `.invalidParameter` if the padding is not valid.
    public static func unpad(_ bytes: [UInt8], blockSize: Int) throws(CryptoError) -> [UInt8] {
        guard blockSize > 0, !bytes.isEmpty, bytes.count % blockSize == 0 else { throw .invalidParameter("padding") }
        var unpadded = 0
        let rc = withBytes(bytes) { b, count in sodium_unpad(&unpadded, b, count, blockSize) }
        guard rc == 0 else { throw .invalidParameter("padding") }
        return Array(bytes[0..<unpadded])
    }
}
