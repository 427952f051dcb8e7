import Testing
import ValiseTestSupport
@testable import ValiseWire

@Suite("Framing: FrameDecoder")
struct FrameDecoderTests {
    /// Lengths around every byte of the length field, and the extremes.
    static let lengths = [1, 2, 3, 127, 128, 255, 256, 257, 1_000, 65_279, 65_280, 65_534, 65_535]

    /// Frames of `lengths` filled with pseudorandom bytes, and the stream that carries them.
    static func stream(_ lengths: [Int], seed: UInt64 = 7) -> (frames: [[UInt8]], bytes: [UInt8]) {
        var rng = SplitMix64(seed: seed)
        let frames = lengths.map { rng.bytes($0) }
        return (frames, frames.flatMap(FrameDecoder.frame))
    }

    /// Appends `pieces` one after another, taking every frame as soon as it is complete.
    /// Also returns the most bytes the decoder held after it had given out what it could.
    static func decode(_ pieces: [ArraySlice<UInt8>]) throws -> (frames: [[UInt8]], mostBuffered: Int, decoder: FrameDecoder) {
        var decoder = FrameDecoder()
        var frames: [[UInt8]] = []
        var mostBuffered = 0
        for piece in pieces {
            decoder.append(piece)
            while let frame = try decoder.nextFrame() { frames.append(frame) }
            mostBuffered = max(mostBuffered, decoder.bufferedByteCount)
        }
        return (frames, mostBuffered, decoder)
    }

    @Test("one byte at a time gives exactly the frames that one append gives")
    func oneByteAtATime() throws {
        let (frames, bytes) = Self.stream([1, 2, 3, 255, 256, 257, 1_000, 65_535, 1])
        let whole = try Self.decode([bytes[...]])
        #expect(whole.frames == frames)
        #expect(whole.decoder.bufferedByteCount == 0)

        var chunker = Chunker(.oneByte)
        let single = try Self.decode(chunker.pieces(of: bytes))
        #expect(single.frames == frames)
        #expect(single.decoder.bufferedByteCount == 0)
        #expect(single.mostBuffered == 2 + 65_535 - 1, "at most one incomplete frame is held")
    }

    @Test("a stream cut at every byte boundary decodes the same")
    func everySplitPoint() throws {
        let (frames, bytes) = Self.stream([1, 2, 3, 255, 256, 300, 1])
        for cut in 0...bytes.count {
            let result = try Self.decode([bytes[..<cut], bytes[cut...]])
            #expect(result.frames == frames, "cut at \(cut)")
            #expect(result.decoder.bufferedByteCount == 0, "cut at \(cut)")
        }
    }

    @Test("many frames in one append come out in order", arguments: [1 as UInt64, 2, 3])
    func manyFramesInOneAppend(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let lengths = (0..<2_000).map { _ in rng.int(in: 1...300) }
        let (frames, bytes) = Self.stream(lengths, seed: seed)
        let result = try Self.decode([bytes[...]])
        #expect(result.frames == frames)
        #expect(result.decoder.bufferedByteCount == 0)
    }

    @Test("random piece sizes decode the same, holding at most one incomplete frame", arguments: [
        Chunking.random(seed: 11, maximum: 3), .random(seed: 12, maximum: 100), .random(seed: 13, maximum: 70_000),
    ])
    func randomPieces(chunking: Chunking) throws {
        let (frames, bytes) = Self.stream(Self.lengths, seed: 5)
        var chunker = Chunker(chunking)
        let result = try Self.decode(chunker.pieces(of: bytes))
        #expect(result.frames == frames)
        #expect(result.mostBuffered <= 65_537)
        #expect(result.decoder.bufferedByteCount == 0)
    }

    @Test("a frame of length 0 is an error, wherever it comes, and is not skipped")
    func emptyFrame() throws {
        var decoder = FrameDecoder()
        decoder.append([0])
        #expect(try decoder.nextFrame() == nil, "one byte of a length is not yet a frame")
        decoder.append([0])
        #expect(throws: FramingError.emptyFrame) { try decoder.nextFrame() }
        #expect(throws: FramingError.emptyFrame) { try decoder.nextFrame() }
        #expect(decoder.bufferedByteCount == 2)

        var after = FrameDecoder()
        after.append(FrameDecoder.frame([7, 8]) + [0, 0] + FrameDecoder.frame([9]))
        #expect(try after.nextFrame() == [7, 8])
        #expect(throws: FramingError.emptyFrame) { try after.nextFrame() }
    }

    @Test("a 65535-byte frame waits for its last byte, holding no more than one frame")
    func largestFrameWaits() throws {
        var rng = SplitMix64(seed: 3)
        let message = rng.bytes(65_535)
        let bytes = FrameDecoder.frame(message)
        #expect(Array(bytes.prefix(2)) == [0xFF, 0xFF])
        var decoder = FrameDecoder()
        var early = 0
        var mostBuffered = 0
        for byte in bytes.dropLast() {
            decoder.append([byte])
            if try decoder.nextFrame() != nil { early += 1 }
            mostBuffered = max(mostBuffered, decoder.bufferedByteCount)
        }
        #expect(early == 0, "no frame before the last byte")
        #expect(mostBuffered == 65_536)
        #expect(mostBuffered <= 65_537)
        decoder.append([bytes.last!, 0x00])
        #expect(try decoder.nextFrame() == message)
        #expect(try decoder.nextFrame() == nil, "half a length field")
        #expect(decoder.bufferedByteCount == 1)
    }

    @Test("frame() writes a big-endian length and decodes back", arguments: [1, 2, 255, 256, 257, 4_660, 65_535])
    func frameRoundTrip(length: Int) throws {
        var rng = SplitMix64(seed: UInt64(length))
        let message = rng.bytes(length)
        let framed = FrameDecoder.frame(message)
        #expect(framed.count == length + 2)
        #expect(framed[0] == UInt8(length >> 8))
        #expect(framed[1] == UInt8(length & 0xFF))
        #expect(Array(framed.dropFirst(2)) == message)
        var decoder = FrameDecoder()
        decoder.append(framed)
        #expect(try decoder.nextFrame() == message)
        #expect(try decoder.nextFrame() == nil)
        #expect(decoder.bufferedByteCount == 0)
    }

    @Test("the buffer compacts: after many frames cut across appends, nothing stays buffered")
    func compacts() throws {
        // 7-byte frames in 3-byte pieces: nearly every frame straddles two appends, so the
        // decoder must drop what it consumed while a partial frame is still buffered.
        let (frames, bytes) = Self.stream(Array(repeating: 5, count: 10_000), seed: 9)
        var decoder = FrameDecoder()
        var decoded = 0
        var mostBuffered = 0
        var offset = 0
        while offset < bytes.count {
            let end = min(offset + 3, bytes.count)
            decoder.append(bytes[offset..<end])
            offset = end
            while let frame = try decoder.nextFrame() {
                #expect(frame == frames[decoded])
                decoded += 1
            }
            mostBuffered = max(mostBuffered, decoder.bufferedByteCount)
        }
        #expect(decoded == frames.count)
        #expect(mostBuffered < 7)
        #expect(decoder.bufferedByteCount == 0)

        // And the decoder is as good as new afterwards.
        decoder.append(FrameDecoder.frame([1, 2, 3]))
        #expect(try decoder.nextFrame() == [1, 2, 3])
        #expect(decoder.bufferedByteCount == 0)
    }

    @Test("nothing is returned from an empty decoder or from one length byte")
    func incompleteLength() throws {
        var decoder = FrameDecoder()
        #expect(try decoder.nextFrame() == nil)
        decoder.append([UInt8]())
        #expect(try decoder.nextFrame() == nil)
        decoder.append([0x00])
        #expect(try decoder.nextFrame() == nil)
        #expect(decoder.bufferedByteCount == 1)
        decoder.append([0x01, 0x2A])
        #expect(try decoder.nextFrame() == [0x2A])
    }
}
