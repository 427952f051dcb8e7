import ValiseCrypto

/// The sizes of an attachment's blob (docs/PROTOCOL.md, "Attachments"): what the sender
/// writes and what a reader insists on, so that a blob's size says no more about its file
/// than Padmé lets through.
///
///     blob   = u8 version (1) ‖ secretstream header (24) ‖ c_1 ‖ … ‖ c_n
///     P      = file ‖ 0x80 ‖ 0x00…  up to `padded` bytes
///     padded = max(4096, padme(length + 1))
///     c_i    = push(P[(i-1)·65536 ..< min(i·65536, padded)]), tag FINAL on c_n only
public enum BlobFormat {
    public static let version: UInt8 = 1
    /// Plaintext bytes per secretstream chunk.
    public static let chunkByteCount = 65_536
    /// The smallest padded plaintext: an empty file still makes a 4 KiB blob.
    public static let minimumPaddedByteCount: UInt64 = 4_096
    /// The padding's first byte (ISO/IEC 7816-4); zeros follow it.
    public static let paddingMarker: UInt8 = 0x80
    /// A file length this client refuses to think about (1 TiB), far above any relay's
    /// limit, so that a hostile length in a message cannot overflow the arithmetic below.
    public static let maximumFileLength: UInt64 = 1 << 40
    /// The version byte and the secretstream header.
    public static let prefixByteCount = 1 + SecretStream.headerByteCount

    /// Padmé (Nikitin et al., "Reducing Metadata Leakage from Encrypted Files and
    /// Communication with PURBs", 2019): rounds `length` up so that only O(log log L) bits of
    /// it show, at most 12 % more bytes.
    public static func padme(_ length: UInt64) -> UInt64 {
        guard length >= 2 else { return length }
        let exponent = UInt64(63 - length.leadingZeroBitCount)
        let bitsOfExponent = UInt64(63 - exponent.leadingZeroBitCount) + 1
        let zeroBits = exponent - bitsOfExponent
        let mask = (UInt64(1) << zeroBits) - 1
        return (length + mask) & ~mask
    }

    /// The padded plaintext's length for a file of `length` bytes (at least one byte of padding).
    public static func paddedLength(fileLength length: UInt64) -> UInt64 {
        precondition(length <= maximumFileLength, "file length checked by the caller")
        return max(minimumPaddedByteCount, padme(length + 1))
    }

    /// How many secretstream chunks the padded plaintext makes.
    public static func chunkCount(fileLength length: UInt64) -> UInt64 {
        let padded = paddedLength(fileLength: length)
        return (padded + UInt64(chunkByteCount) - 1) / UInt64(chunkByteCount)
    }

    /// The blob's size in bytes for a file of `length` bytes.
    public static func blobSize(fileLength length: UInt64) -> UInt64 {
        UInt64(prefixByteCount) + paddedLength(fileLength: length)
            + UInt64(SecretStream.overheadByteCount) * chunkCount(fileLength: length)
    }

    /// The plaintext length of chunk `index` (0-based).
    public static func chunkLength(_ index: UInt64, fileLength length: UInt64) -> Int {
        let padded = paddedLength(fileLength: length)
        let start = index * UInt64(chunkByteCount)
        return Int(min(UInt64(chunkByteCount), padded - start))
    }
}
