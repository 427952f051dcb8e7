import Testing
import ValiseCrypto
@testable import ValiseSession

@Suite("Sessions: initial messages, replies, replays")
struct SessionTests {
    /// Bob's prekeys as a device store would answer, with a replay record.
    final class BobStore {
        let pair: SessionPair
        var oneTimeLeft: Bool
        var kemOneTimeLeft = true
        var seen: Set<[UInt8]> = []
        init(_ pair: SessionPair, oneTime: Bool = true) {
            self.pair = pair
            self.oneTimeLeft = oneTime
        }
        var prekeys: Session.Prekeys {
            Session.Prekeys(
                signedPrekey: { [pair] in $0 == pair.bobSignedPrekey.publicKey ? pair.bobSignedPrekey : nil },
                oneTimePrekey: { [self] in $0 == pair.bobOneTimePrekey.publicKey && oneTimeLeft ? pair.bobOneTimePrekey : nil },
                kemPrekey: { [self] id in
                    if id == PQXDH.kemPrekeyID(pair.bobKEMPrekey.publicKey) && kemOneTimeLeft { return (pair.bobKEMPrekey, .oneTime) }
                    if id == PQXDH.kemPrekeyID(pair.bobLastResortKEMPrekey.publicKey) { return (pair.bobLastResortKEMPrekey, .lastResort) }
                    return nil
                },
                seenBefore: { [self] in seen.contains($0) })
        }
        /// As the client does: spent one-time prekeys go, and a replay record is kept only
        /// where none was spent.
        func record(_ accepted: Session.Accepted) {
            if accepted.needsReplayRecord { seen.insert(accepted.replayKey) }
            if accepted.usedOneTimePrekey != nil { oneTimeLeft = false }
            if accepted.usedOneTimeKEMPrekey != nil { kemOneTimeLeft = false }
        }
    }

    @Test("every message carries the initial header until a reply is read; the first to arrive starts the session, whichever it is", arguments: [true, false])
    func headerUntilReply(oneTime: Bool) throws {
        var pair = SessionPair()
        let store = BobStore(pair, oneTime: oneTime)
        var alice = try Session.initiate(identity: pair.alice, bundle: pair.bundle(oneTime: oneTime), ephemeral: pair.nextKey(), ratchetKey: pair.nextKey())
        let flash = try alice.encrypt(text("FLASH"))
        let routine = try alice.encrypt(text("ROUTINE"))
        #expect(Session.isInitial(flash) && Session.isInitial(routine) && alice.awaitsReply)

        // Delivered in precedence order: the second message first.
        let accepted = try Session.accept(routine, identity: pair.bob, prekeys: store.prekeys, newRatchetKey: { pair.nextKey() })
        store.record(accepted)
        #expect(accepted.plaintext == text("ROUTINE"))
        #expect(accepted.session.peerIdentity == pair.alice.publicKey)
        #expect(accepted.usedOneTimePrekey == (oneTime ? pair.bobOneTimePrekey.publicKey : nil))
        var bob = accepted.session
        #expect(try bob.decrypt(flash, newRatchetKey: { pair.nextKey() }) == text("FLASH"))

        let reply = try bob.encrypt(text("reply"))
        #expect(!Session.isInitial(reply))
        #expect(try alice.decrypt(reply, newRatchetKey: { pair.nextKey() }) == text("reply"))
        #expect(!alice.awaitsReply)
        let after = try alice.encrypt(text("after the reply"))
        #expect(!Session.isInitial(after))
        #expect(try bob.decrypt(after, newRatchetKey: { pair.nextKey() }) == text("after the reply"))
    }

    @Test(
        "a replayed initial message starts no second session: refused by the replay record, or by a spent one-time prekey of either kind",
        arguments: [(true, false), (false, false), (true, true), (false, true)])
    func replayedInitial(oneTime: Bool, lastResort: Bool) throws {
        var pair = SessionPair(seed: 11)
        let store = BobStore(pair, oneTime: oneTime)
        var alice = try Session.initiate(
            identity: pair.alice, bundle: pair.bundle(oneTime: oneTime, lastResort: lastResort), ephemeral: pair.nextKey(), ratchetKey: pair.nextKey())
        let first = try alice.encrypt(text("once"))
        var bob = try Session.accept(first, identity: pair.bob, prekeys: store.prekeys, newRatchetKey: { pair.nextKey() })
        store.record(bob)
        #expect(bob.usedOneTimeKEMPrekey == (lastResort ? nil : pair.kemPrekey().id), "a last-resort KEM prekey is never reported for deletion")
        #expect(bob.needsReplayRecord == (!oneTime && lastResort))
        #expect(store.kemOneTimeLeft == lastResort)
        // To the live session, the replay is a duplicate.
        #expect(throws: SessionError.duplicate) { try bob.session.decrypt(first, newRatchetKey: { pair.nextKey() }) }
        // A device that lost the session (or an attacker replaying to a fresh one) gets no second one.
        let expected: SessionError = oneTime || !lastResort ? .unknownPrekey : .duplicate
        #expect(throws: expected) { try Session.accept(first, identity: pair.bob, prekeys: store.prekeys, newRatchetKey: { pair.nextKey() }) }
    }

    @Test("an initial message for a prekey bob does not hold, a tampered one, and a new session's header are each refused clearly")
    func refusals() throws {
        var pair = SessionPair(seed: 5)
        let store = BobStore(pair)
        var alice = try Session.initiate(identity: pair.alice, bundle: pair.bundle(), ephemeral: pair.nextKey(), ratchetKey: pair.nextKey())
        let message = try alice.encrypt(text("hello"))
        var stranger = SessionPair(seed: 6)
        let otherStore = BobStore(stranger)
        #expect(throws: SessionError.unknownPrekey) { try Session.accept(message, identity: stranger.bob, prekeys: otherStore.prekeys, newRatchetKey: { stranger.nextKey() }) }
        var tampered = message
        tampered[tampered.count - 1] ^= 1
        #expect(throws: SessionError.undecryptable) { try Session.accept(tampered, identity: pair.bob, prekeys: store.prekeys, newRatchetKey: { pair.nextKey() }) }
        #expect(store.seen.isEmpty, "a failed accept records nothing")
        for bad in [[], [2, 1], [1, 9, 0], Array(message.prefix(60))] as [[UInt8]] {
            #expect(throws: (any Error).self) { try Session.accept(bad, identity: pair.bob, prekeys: store.prekeys, newRatchetKey: { pair.nextKey() }) }
        }
        var bob = try Session.accept(message, identity: pair.bob, prekeys: store.prekeys, newRatchetKey: { pair.nextKey() }).session
        var again = try Session.initiate(identity: pair.alice, bundle: pair.bundle(oneTime: false), ephemeral: pair.nextKey(), ratchetKey: pair.nextKey())
        #expect(throws: SessionError(code: "new-session", message: "")) { try bob.decrypt(try again.encrypt(text("restart")), newRatchetKey: { pair.nextKey() }) }
        #expect(throws: SessionError(code: "no-session", message: "")) {
            try Session.accept(try bob.encrypt(text("not initial")), identity: pair.bob, prekeys: store.prekeys, newRatchetKey: { pair.nextKey() })
        }
    }

    @Test("a stored session (format 2, the PQXDH header behind a u16 length) reads back and goes on; format 1 and a too-long header are refused")
    func storedSession() throws {
        var pair = SessionPair(seed: 41)
        let store = BobStore(pair)
        var alice = try Session.initiate(identity: pair.alice, bundle: pair.bundle(), ephemeral: pair.nextKey(), ratchetKey: pair.nextKey())
        let first = try alice.encrypt(text("stored"))
        var restored = try Session(stored: alice.stored)
        #expect(restored.awaitsReply && restored.involves(pair.alice.publicKey) && restored.involves(pair.bob.publicKey))
        #expect(!restored.involves(SessionPair(seed: 42).alice.publicKey))
        let second = try restored.encrypt(text("after restoring"))
        let bytes = alice.stored.withUnsafeBytes { Array($0) }
        #expect(bytes[0] == 2 && Array(bytes[33..<35]) == [0x06, 0xC1], "version 2, then a u16 header length of 1729")
        var bob = try Session.accept(first, identity: pair.bob, prekeys: store.prekeys, newRatchetKey: { pair.nextKey() }).session
        var bobRestored = try Session(stored: bob.stored)
        #expect(try bobRestored.decrypt(second, newRatchetKey: { pair.nextKey() }) == text("after restoring"))
        #expect(try bob.decrypt(second, newRatchetKey: { pair.nextKey() }) == text("after restoring"))

        var old = bytes
        old[0] = 1
        #expect(throws: SessionError(code: "bad-stored-session", message: "")) { try Session(stored: SecretBytes(copying: old)) }
        var long = bytes
        long[33] = 0x07
        #expect(throws: SessionError(code: "bad-stored-session", message: "")) { try Session(stored: SecretBytes(copying: long)) }
        #expect(throws: SessionError(code: "bad-stored-session", message: "")) { try Session(stored: SecretBytes(copying: Array(bytes.dropLast()))) }
    }

    @Test("a session message of version 1 (X3DH) is refused with both versions named")
    func oldVersion() throws {
        var pair = SessionPair(seed: 43)
        var alice = try Session.initiate(identity: pair.alice, bundle: pair.bundle(), ephemeral: pair.nextKey(), ratchetKey: pair.nextKey())
        var message = try alice.encrypt(text("new"))
        message[0] = 1
        let error = #expect(throws: SessionError.self) { try Session.accept(message, identity: pair.bob, prekeys: BobStore(pair).prekeys) }
        #expect(error?.code == "unsupported-version" && error?.message.contains("version 1") == true && error?.message.contains("version 2") == true)
    }
}
