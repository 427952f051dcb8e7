import CSodium

/// Standard base64 (RFC 4648 section 4, with padding), libsodium's codec. Decoding is strict:
/// only the alphabet and padding, no whitespace, and unused bits must be zero, so every
/// byte string has exactly one text form.
public enum Base64 {
    public static func encode(_ bytes: [UInt8]) -> String {
        Sodium.ensureInitialised()
        let length = sodium_base64_encoded_len(bytes.count, sodium_base64_VARIANT_ORIGINAL)
        let text = withBytes(bytes) { input, count in
            makeBytes(count: length) { out in
                out.withMemoryRebound(to: CChar.self, capacity: length) { chars in
                    _ = sodium_bin2base64(chars, length, input, count, sodium_base64_VARIANT_ORIGINAL)
                }
            }
        }
        // The last byte is the C string's terminator.
        return String(decoding: text.dropLast(), as: UTF8.self)
    }

    /// Decodes `text`, or returns nil if it is not strict, canonical base64.
    public static func decode(_ text: [UInt8]) -> [UInt8]? {
        guard !text.isEmpty, text.count % 4 == 0 else { return nil }
        Sodium.ensureInitialised()
        let capacity = text.count / 4 * 3
        var decodedCount = 0
        var failed = false
        var output = withBytes(text) { input, count in
            makeBytes(count: capacity) { out in
                input.withMemoryRebound(to: CChar.self, capacity: count) { chars in
                    failed = sodium_base642bin(out, capacity, chars, count, nil, &decodedCount, nil, sodium_base64_VARIANT_ORIGINAL) != 0
                }
            }
        }
        guard !failed else { return nil }
        output.removeLast(capacity - decodedCount)
        return output
    }
}
