import Testing
import ValiseTestSupport
@testable import ValiseWire

@Suite("Framing: message fragments and reassembly")
struct MessageFragmentsTests {
    static let chunk = MessageFragments.maximumChunk

    @Test("one fragment's plaintext, encrypted, fills a frame exactly")
    func chunkSize() {
        #expect(Self.chunk == 65_518)
        #expect(1 + Self.chunk + 16 == FrameDecoder.maximumFrameLength)
    }

    @Test("messages split into bounded fragments and reassemble", arguments: [
        (0, 1), (1, 1), (65_518, 1), (65_519, 2), (65_520, 2), (131_036, 2), (131_037, 3), (200_000, 4),
    ])
    func splitAndReassemble(length: Int, fragmentCount: Int) throws {
        var rng = SplitMix64(seed: UInt64(length) &+ 1)
        let message = rng.bytes(length)
        let fragments = MessageFragments.split(message)
        #expect(fragments.count == fragmentCount)
        for (index, fragment) in fragments.enumerated() {
            let isLast = index == fragments.count - 1
            #expect(fragment.first == (isLast ? MessageFragments.lastChunk : MessageFragments.moreChunks))
            #expect(fragment.count <= 1 + Self.chunk)
            if !isLast { #expect(fragment.count == 1 + Self.chunk, "only the last fragment is short") }
        }
        #expect(fragments.reduce(0) { $0 + $1.count - 1 } == length)

        var reassembler = MessageReassembler(maximumMessageLength: length)
        #expect(!reassembler.isPartial)
        for fragment in fragments.dropLast() {
            #expect(try reassembler.receive(fragment) == nil)
            #expect(reassembler.isPartial)
        }
        #expect(try reassembler.receive(fragments.last!) == message, "reassembles at exactly the bound")
        #expect(!reassembler.isPartial)

        // The reassembler is reusable: the same message again, then a short one.
        for fragment in fragments.dropLast() { _ = try reassembler.receive(fragment) }
        #expect(try reassembler.receive(fragments.last!) == message)
        #expect(try reassembler.receive([MessageFragments.lastChunk]) == [])
    }

    @Test("an empty message is one fragment holding only the header")
    func emptyMessage() throws {
        #expect(MessageFragments.split([]) == [[MessageFragments.lastChunk]])
        var reassembler = MessageReassembler(maximumMessageLength: 0)
        #expect(try reassembler.receive([0x00]) == [])
        // Empty intermediate fragments add nothing.
        #expect(try reassembler.receive([0x01]) == nil)
        #expect(reassembler.isPartial)
        #expect(try reassembler.receive([0x00]) == [])
    }

    @Test("a header byte other than 0 or 1 is refused", arguments: [0x02, 0x7F, 0x80, 0xFF] as [UInt8])
    func badHeader(header: UInt8) throws {
        var first = MessageReassembler(maximumMessageLength: 100)
        #expect(throws: FramingError.badFragmentHeader) { try first.receive([header, 1, 2, 3]) }
        #expect(throws: FramingError.badFragmentHeader) { try first.receive([header]) }

        var later = MessageReassembler(maximumMessageLength: 100)
        #expect(try later.receive([0x01, 1, 2]) == nil)
        #expect(throws: FramingError.badFragmentHeader) { try later.receive([header, 3]) }
    }

    @Test("a fragment without its header byte is refused")
    func emptyFragment() throws {
        var reassembler = MessageReassembler(maximumMessageLength: 100)
        #expect(throws: FramingError.emptyFragment) { try reassembler.receive([]) }
        _ = try reassembler.receive([0x01, 1])
        #expect(throws: FramingError.emptyFragment) { try reassembler.receive([]) }
    }

    @Test("a first fragment past the bound is refused before anything is kept", arguments: [
        MessageFragments.lastChunk, MessageFragments.moreChunks,
    ])
    func tooLargeFirst(header: UInt8) throws {
        var reassembler = MessageReassembler(maximumMessageLength: 10)
        #expect(throws: FramingError.messageTooLarge(limit: 10)) {
            try reassembler.receive([header] + [UInt8](repeating: 1, count: 11))
        }
        #expect(!reassembler.isPartial, "nothing of the refused fragment was kept")
        // Exactly at the bound is fine.
        #expect(try reassembler.receive([0x00] + [UInt8](repeating: 2, count: 10)) == [UInt8](repeating: 2, count: 10))
    }

    @Test("a later fragment past the bound is refused before it is appended")
    func tooLargeLater() throws {
        var reassembler = MessageReassembler(maximumMessageLength: 100)
        #expect(try reassembler.receive([0x01] + [UInt8](repeating: 1, count: 60)) == nil)
        #expect(throws: FramingError.messageTooLarge(limit: 100)) {
            try reassembler.receive([0x01] + [UInt8](repeating: 2, count: 41))
        }
        #expect(throws: FramingError.messageTooLarge(limit: 100)) {
            try reassembler.receive([0x00] + [UInt8](repeating: 2, count: 41))
        }
        // What was refused was never appended: 60 + 40 still fits, and holds only those bytes.
        // (A connection closes on the first error; this only shows the check comes first.)
        let message = try reassembler.receive([0x00] + [UInt8](repeating: 3, count: 40))
        #expect(message == [UInt8](repeating: 1, count: 60) + [UInt8](repeating: 3, count: 40))
    }

    @Test("the bound holds for full-size fragments: refused on the fragment that crosses it")
    func tooLargeFullFragments() throws {
        let bound = 150_000
        var rng = SplitMix64(seed: 4)
        let fragments = MessageFragments.split(rng.bytes(bound + 1))
        #expect(fragments.count == 3)
        var reassembler = MessageReassembler(maximumMessageLength: bound)
        #expect(try reassembler.receive(fragments[0]) == nil)
        #expect(try reassembler.receive(fragments[1]) == nil)
        #expect(throws: FramingError.messageTooLarge(limit: bound)) { try reassembler.receive(fragments[2]) }
    }

    @Test("isPartial follows the fragments")
    func isPartial() throws {
        var reassembler = MessageReassembler(maximumMessageLength: 1_000)
        #expect(!reassembler.isPartial)
        #expect(try reassembler.receive([0x00, 1]) == [1])
        #expect(!reassembler.isPartial)
        #expect(try reassembler.receive([0x01, 1]) == nil)
        #expect(reassembler.isPartial)
        #expect(try reassembler.receive([0x01, 2]) == nil)
        #expect(reassembler.isPartial)
        #expect(try reassembler.receive([0x00, 3]) == [1, 2, 3])
        #expect(!reassembler.isPartial)
    }
}
