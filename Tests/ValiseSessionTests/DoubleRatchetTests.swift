import Testing
import ValiseCrypto
@testable import ValiseSession

@Suite("Double Ratchet")
struct DoubleRatchetTests {
    @Test("a conversation in both directions, with several ratchet steps, decrypts in order")
    func conversation() throws {
        var pair = SessionPair()
        var (alice, bob, _) = try pair.sessions()
        #expect(alice.canSend && !bob.canSend)
        #expect(throws: SessionError(code: "cannot-send", message: "")) { try bob.encrypt(text("too early")) }
        for round in 0..<5 {
            for n in 0..<3 {
                let message = try alice.encrypt(text("a\(round).\(n)"))
                #expect(try bob.decrypt(message, newRatchetKey: { pair.nextKey() }) == text("a\(round).\(n)"))
            }
            let reply = try bob.encrypt(text("b\(round)"))
            #expect(try alice.decrypt(reply, newRatchetKey: { pair.nextKey() }) == text("b\(round)"))
        }
        #expect(alice.skippedKeyCount == 0 && bob.skippedKeyCount == 0)
    }

    @Test("messages delivered out of order, across ratchet steps, all decrypt once; lost ones leave only their keys")
    func outOfOrderAndLoss() throws {
        var pair = SessionPair(seed: 7)
        var (alice, bob, _) = try pair.sessions()
        let first = try (0..<4).map { try alice.encrypt(text("first \($0)")) }
        #expect(try bob.decrypt(first[3], newRatchetKey: { pair.nextKey() }) == text("first 3"))
        #expect(bob.skippedKeyCount == 3)
        let reply = try bob.encrypt(text("reply"))
        #expect(try alice.decrypt(reply, newRatchetKey: { pair.nextKey() }) == text("reply"))
        // A new chain from alice; the old chain's messages still come in late.
        let second = try (0..<3).map { try alice.encrypt(text("second \($0)")) }
        #expect(try bob.decrypt(second[2], newRatchetKey: { pair.nextKey() }) == text("second 2"))
        #expect(try bob.decrypt(first[1], newRatchetKey: { pair.nextKey() }) == text("first 1"))
        #expect(try bob.decrypt(second[0], newRatchetKey: { pair.nextKey() }) == text("second 0"))
        #expect(try bob.decrypt(first[0], newRatchetKey: { pair.nextKey() }) == text("first 0"))
        // first[2] and second[1] are lost: their keys wait, bounded.
        #expect(bob.skippedKeyCount == 2)
    }

    @Test("a replayed message is refused as a duplicate, also after it came out of order")
    func replay() throws {
        var pair = SessionPair()
        var (alice, bob, _) = try pair.sessions()
        let messages = try (0..<3).map { try alice.encrypt(text("m\($0)")) }
        _ = try bob.decrypt(messages[2], newRatchetKey: { pair.nextKey() })
        _ = try bob.decrypt(messages[0], newRatchetKey: { pair.nextKey() })
        #expect(throws: SessionError.duplicate) { try bob.decrypt(messages[2], newRatchetKey: { pair.nextKey() }) }
        // A replay of a message whose skipped key was used: not in the store, behind the chain.
        #expect(throws: SessionError.duplicate) { try bob.decrypt(messages[0], newRatchetKey: { pair.nextKey() }) }
        #expect(try bob.decrypt(messages[1], newRatchetKey: { pair.nextKey() }) == text("m1"))
    }

    @Test("tampering with any byte of header or ciphertext, or another session's AD, fails and leaves the session unchanged")
    func tamper() throws {
        var pair = SessionPair()
        var (alice, bob, _) = try pair.sessions()
        let message = try alice.encrypt(text("the ambassador arrives at noon"))
        let bytes = message.encoded
        for index in stride(from: 0, to: bytes.count, by: 3) {
            var altered = bytes
            altered[index] ^= 0x40
            let before = bob
            #expect(throws: (any Error).self) { try bob.decrypt(try RatchetMessage(decoding: altered), newRatchetKey: { pair.nextKey() }) }
            #expect(before.skippedKeyCount == bob.skippedKeyCount)
        }
        // The untouched message still decrypts: nothing advanced.
        #expect(try bob.decrypt(message, newRatchetKey: { pair.nextKey() }) == text("the ambassador arrives at noon"))

        // The same keys under another session's associated data do not open it.
        var other = SessionPair(seed: 99)
        var (_, stranger, _) = try other.sessions()
        let next = try alice.encrypt(text("for bob only"))
        #expect(throws: SessionError.undecryptable) { try stranger.decrypt(next, newRatchetKey: { other.nextKey() }) }
        #expect(throws: SessionError.malformed("")) { try RatchetMessage(decoding: Array(bytes.prefix(55))) }
    }

    @Test("a header that skips more than MAX_SKIP messages is refused; the limit itself is fine; stored keys are capped")
    func skipBounds() throws {
        var pair = SessionPair()
        var (alice, bob, _) = try pair.sessions()
        var messages: [RatchetMessage] = []
        for _ in 0...(DoubleRatchet.maximumSkip + 1) { messages.append(try alice.encrypt(text("x"))) }
        #expect(throws: SessionError.tooManySkipped(0, limit: 0)) {
            try bob.decrypt(messages[DoubleRatchet.maximumSkip + 1], newRatchetKey: { pair.nextKey() })
        }
        #expect(bob.skippedKeyCount == 0)
        #expect(try bob.decrypt(messages[DoubleRatchet.maximumSkip], newRatchetKey: { pair.nextKey() }) == text("x"))
        #expect(bob.skippedKeyCount == DoubleRatchet.maximumSkip)
        // Another full skip in a new chain: the store keeps at most maximumStoredSkipped keys.
        _ = try alice.decrypt(try bob.encrypt(text("r")), newRatchetKey: { pair.nextKey() })
        var more: [RatchetMessage] = []
        for _ in 0...DoubleRatchet.maximumSkip { more.append(try alice.encrypt(text("y"))) }
        _ = try bob.decrypt(more[DoubleRatchet.maximumSkip], newRatchetKey: { pair.nextKey() })
        _ = try alice.decrypt(try bob.encrypt(text("r2")), newRatchetKey: { pair.nextKey() })
        var third: [RatchetMessage] = []
        for _ in 0...DoubleRatchet.maximumSkip { third.append(try alice.encrypt(text("z"))) }
        _ = try bob.decrypt(third[DoubleRatchet.maximumSkip], newRatchetKey: { pair.nextKey() })
        #expect(bob.skippedKeyCount == DoubleRatchet.maximumStoredSkipped)
        // The oldest went first: the first chain's earliest key is gone, the newest are kept.
        #expect(throws: (any Error).self) { try bob.decrypt(messages[0], newRatchetKey: { pair.nextKey() }) }
        #expect(try bob.decrypt(third[0], newRatchetKey: { pair.nextKey() }) == text("z"))
    }

    @Test("the ratchet header round-trips byte for byte (big-endian counters)")
    func headerEncoding() throws {
        let key = try AgreementPublicKey(bytes: (0..<32).map { UInt8($0) })
        let header = RatchetHeader(ratchetKey: key, previousChainLength: 0x0102_0304, messageNumber: 0xA0B0_C0D0)
        #expect(header.encoded == key.bytes + [1, 2, 3, 4, 0xA0, 0xB0, 0xC0, 0xD0])
        #expect(try RatchetHeader(decoding: header.encoded) == header)
        #expect(throws: SessionError.malformed("")) { try RatchetHeader(decoding: Array(header.encoded.dropLast())) }
    }
}
