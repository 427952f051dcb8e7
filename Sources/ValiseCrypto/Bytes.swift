import CSodium

// Helpers for the byte buffers that cross into libsodium.
//
// libsodium 1.0.18 marks many pointer parameters `nonnull`, so Swift imports them as
// non-optional and an empty array's missing base address would crash. Every call goes
// through these helpers, which pass a valid (unused) address for empty input.

private let emptyByte: UInt8 = 0

@inline(__always)
func withBytes<R, E: Error>(
    _ bytes: [UInt8],
    _ body: (UnsafePointer<UInt8>, Int) throws(E) -> R
) throws(E) -> R {
    if bytes.isEmpty {
        return try withUnsafePointer(to: emptyByte) { (pointer) throws(E) -> R in
            try body(pointer, 0)
        }
    }
    return try bytes.withUnsafeBufferPointer { (buffer) throws(E) -> R in
        try body(buffer.baseAddress!, buffer.count)
    }
}

@inline(__always)
func withBytes<R, E: Error>(
    _ secret: SecretBytes,
    _ body: (UnsafePointer<UInt8>, Int) throws(E) -> R
) throws(E) -> R {
    try secret.withUnsafeBytes { (raw) throws(E) -> R in
        if raw.isEmpty {
            return try withUnsafePointer(to: emptyByte) { (pointer) throws(E) -> R in
                try body(pointer, 0)
            }
        }
        return try body(raw.baseAddress!.assumingMemoryBound(to: UInt8.self), raw.count)
    }
}

/// Allocates an array of `count` bytes and lets `body` fill every one of them. `body` always
/// runs, even for zero bytes: it may be a check (an AEAD tag) that must not be skipped.
@inline(__always)
func makeBytes<E: Error>(
    count: Int,
    _ body: (UnsafeMutablePointer<UInt8>) throws(E) -> Void
) throws(E) -> [UInt8] {
    if count == 0 {
        var spare: UInt8 = 0
        try body(&spare)
        return []
    }
    var result = [UInt8](repeating: 0, count: count)
    try result.withUnsafeMutableBufferPointer { (buffer) throws(E) -> Void in
        try body(buffer.baseAddress!)
    }
    return result
}

/// Wipes an ordinary array that briefly held something sensitive (a decrypted buffer about to
/// be copied into guarded memory, for example). Swift may have made copies elsewhere; use
/// `SecretBytes` from the start where it matters.
public func wipe(_ bytes: inout [UInt8]) {
    guard !bytes.isEmpty else { return }
    bytes.withUnsafeMutableBytes { raw in sodium_memzero(raw.baseAddress!, raw.count) }
}

/// Compares two public byte strings in constant time for equal lengths (tags, hashes).
public func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    if a.isEmpty { return true }
    return a.withUnsafeBytes { ra in
        b.withUnsafeBytes { rb in sodium_memcmp(ra.baseAddress!, rb.baseAddress!, ra.count) == 0 }
    }
}

/// Lower-case hexadecimal, for public values only (keys, hashes, signatures).
public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes hexadecimal (either case); nil for an odd length or a non-hex character.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count / 2)
        var index = 0
        while index < utf8.count {
            guard let high = nibble(utf8[index]), let low = nibble(utf8[index + 1]) else { return nil }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// Random bytes from libsodium's CSPRNG (the kernel's getrandom).
public enum Random {
    /// `count` public random bytes (nonces, salts, identifiers).
    public static func bytes(count: Int) -> [UInt8] {
        Sodium.ensureInitialised()
        return makeBytes(count: count) { randombytes_buf($0, count) }
    }
}
