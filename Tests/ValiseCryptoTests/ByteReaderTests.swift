import Testing
@testable import ValiseCrypto

@Suite("Byte formats")
struct ByteReaderTests {
    @Test("writer and reader agree")
    func roundTrip() throws {
        var writer = ByteWriter()
        writer.write(UInt8(7))
        writer.write(UInt16(0x0102))
        writer.write(UInt32(0x0304_0506))
        writer.write(UInt64(0x0708_090a_0b0c_0d0e))
        writer.writeString("jakarta")
        writer.write([0xaa, 0xbb])
        #expect(writer.bytes.prefix(7) == [7, 1, 2, 3, 4, 5, 6])

        try writer.bytes.withUnsafeBytes { raw in
            var reader = ByteReader(raw, context: "test")
            #expect(try reader.readUInt8() == 7)
            #expect(try reader.readUInt16() == 0x0102)
            #expect(try reader.readUInt32() == 0x0304_0506)
            #expect(try reader.readUInt64() == 0x0708_090a_0b0c_0d0e)
            #expect(try reader.readString(maximumByteCount: 16, field: "mission") == "jakarta")
            #expect(try reader.readBytes(2) == [0xaa, 0xbb])
            try reader.expectEnd()
        }
    }

    /// Every prefix of a valid encoding is refused as truncated, never read past its end.
    @Test("every truncation is detected")
    func truncation() {
        var writer = ByteWriter()
        writer.write(UInt64(1))
        writer.writeString("alice@jakarta")
        let bytes = writer.bytes
        for length in 0..<bytes.count {
            let prefix = Array(bytes.prefix(length))
            #expect(throws: FormatError.truncated("x")) {
                try prefix.withUnsafeBytes { raw in
                    var reader = ByteReader(raw, context: "x")
                    _ = try reader.readUInt64()
                    _ = try reader.readString(maximumByteCount: 64, field: "name")
                }
            }
        }
    }

    @Test("over-long strings, invalid UTF-8 and trailing bytes are refused")
    func limits() {
        #expect(throws: FormatError.self) {
            try ([0, 3, 0x61, 0x62, 0x63] as [UInt8]).withUnsafeBytes { raw in
                var reader = ByteReader(raw, context: "x")
                _ = try reader.readString(maximumByteCount: 2, field: "name")
            }
        }
        #expect(throws: FormatError.self) {
            try ([0, 2, 0xc3, 0x28] as [UInt8]).withUnsafeBytes { raw in
                var reader = ByteReader(raw, context: "x")
                _ = try reader.readString(maximumByteCount: 8, field: "name")
            }
        }
        #expect(throws: FormatError.trailingBytes("x")) {
            try ([1, 2] as [UInt8]).withUnsafeBytes { raw in
                var reader = ByteReader(raw, context: "x")
                _ = try reader.readUInt8()
                try reader.expectEnd()
            }
        }
    }
}
