import Testing
@testable import ValiseSession

/// Padmé and the blob sizes it gives (docs/PROTOCOL.md, "Attachments").
@Suite("Blob format")
struct BlobFormatTests {
    /// Padmé by its definition, computed the slow way (logarithms as loops) to check the
    /// bit-twiddling one.
    private func reference(_ length: UInt64) -> UInt64 {
        guard length >= 2 else { return length }
        var exponent: UInt64 = 0
        while (UInt64(1) << (exponent + 1)) <= length { exponent += 1 }
        var logOfExponent: UInt64 = 0
        while (UInt64(1) << (logOfExponent + 1)) <= exponent { logOfExponent += 1 }
        let zeroBits = exponent - (logOfExponent + 1)
        var rounded = length
        while rounded % (UInt64(1) << zeroBits) != 0 { rounded += 1 }
        return rounded
    }

    @Test("Padmé matches its definition from 0 to 4,096 and at the chunk and size boundaries")
    func padmeMatchesDefinition() {
        for length in UInt64(0)...4_096 { #expect(BlobFormat.padme(length) == reference(length), "L = \(length)") }
        for length: UInt64 in [65_535, 65_536, 65_537, 1 << 20, (1 << 20) + 1, (1 << 30) - 1, 1 << 30, (1 << 30) + 1] {
            #expect(BlobFormat.padme(length) == reference(length), "L = \(length)")
        }
    }

    @Test("Padmé never shrinks and adds at most 12 %")
    func padmeBounds() {
        for length: UInt64 in [2, 3, 100, 4_097, 65_537, 1_000_000, (1 << 30) + 1, 123_456_789] {
            let padded = BlobFormat.padme(length)
            #expect(padded >= length)
            #expect(Double(padded - length) <= 0.12 * Double(length))
        }
    }

    @Test("known values")
    func padmeKnownValues() {
        #expect(BlobFormat.padme(0) == 0)
        #expect(BlobFormat.padme(1) == 1)
        #expect(BlobFormat.padme(9) == 10)  // E = 3, S = 2, z = 1
        #expect(BlobFormat.padme(65_537) == 67_584)  // E = 16, S = 5, z = 11
        #expect(BlobFormat.padme(1 << 30) == 1 << 30)
        #expect(BlobFormat.padme((1 << 30) + 1) == (1 << 30) + (1 << 25))  // E = 30, S = 5, z = 25
    }

    @Test("blob sizes: at least 4 KiB of plaintext, 17 bytes per 64 KiB chunk, 25 bytes of prefix")
    func blobSizes() {
        #expect(BlobFormat.paddedLength(fileLength: 0) == 4_096)
        #expect(BlobFormat.blobSize(fileLength: 0) == 25 + 4_096 + 17)
        #expect(BlobFormat.blobSize(fileLength: 4_095) == 25 + 4_096 + 17)
        // 4,096 bytes need a padding byte: padme(4,097) = 4,352.
        #expect(BlobFormat.paddedLength(fileLength: 4_096) == 4_352)
        #expect(BlobFormat.paddedLength(fileLength: 65_535) == 65_536)
        #expect(BlobFormat.chunkCount(fileLength: 65_535) == 1)
        #expect(BlobFormat.paddedLength(fileLength: 65_536) == 67_584)
        #expect(BlobFormat.chunkCount(fileLength: 65_536) == 2)
        #expect(BlobFormat.chunkLength(1, fileLength: 65_536) == 2_048)
        #expect(BlobFormat.blobSize(fileLength: 65_536) == 25 + 67_584 + 34)
        let gib: UInt64 = 1 << 30
        #expect(BlobFormat.paddedLength(fileLength: gib) == gib + (1 << 25))
        #expect(BlobFormat.chunkCount(fileLength: gib) == (gib + (1 << 25)) / 65_536)
    }
}
