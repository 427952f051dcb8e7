import Foundation
import Testing
import ValiseTestSupport
import ValiseCrypto
import ValiseWire

// Hostile input to a real `valised` over real sockets (DESIGN.md, threat model: "anyone on
// the internet can connect to the relay port … cannot exhaust the relay with malformed,
// oversized or slow input"). Each test starts its own organisation and relay with short
// limits, attacks it from 127.0.0.2 and up (so that per-address limits never touch the
// well-behaved clients on 127.0.0.1), then checks that the relay closed the attacker within
// a bound, still runs, and still serves an enrolled device. Slow, streaming and flooding
// clients are in RelayHostileInputTests+Exhaustion.swift.

/// The limits every relay here runs with, set as an operator would: environment variables,
/// whose names swift-configuration derives from keys such as `limits.frameTimeoutSeconds`.
/// The tests see each one take effect (the log names 1.0 s, 2.0 s and 65536 bytes).
enum HostileLimits {
    static let environment = [
        "VALISED_LIMITS_HANDSHAKE_TIMEOUT_SECONDS": "2",
        "VALISED_LIMITS_FRAME_TIMEOUT_SECONDS": "1",
        "VALISED_LIMITS_MAX_MESSAGE_BYTES": "65536",
        "VALISED_LIMITS_MAX_CONNECTIONS_PER_ADDRESS": "16",
    ]
    static let frameTimeout = 1.0
    static let handshakeTimeout = 2.0
    static let maximumMessageBytes = 65_536
    static let connectionsPerAddress = 16
}

@Suite("Relay: hostile input over real sockets (real valised)", .serialized)
struct RelayHostileInputTests {
    // MARK: 1. Garbage before the handshake

    @Test("random bytes before the handshake: closed at once, nothing written back")
    func randomGarbage() throws {
        let world = try RelayWorld(members: ["alice@jakarta"], relayEnvironment: HostileLimits.environment)
        var random = SplitMix64(seed: 0x7a11_5e)
        // Blobs of several sizes whose first two bytes, read as a length, announce a frame
        // that fits in the blob: the relay gets one whole frame that does not decrypt as a
        // first handshake message (or, longer than 1248 bytes, cannot be one), and trailing
        // bytes after it.
        for (index, length) in [50, 1_000, 65_537, 70_000, 200_000].enumerated() {
            let source = "127.0.0.\(2 + index)"
            var blob = random.bytes(length)
            // A length that fits in the blob, never 0 (which has a test of its own).
            let frameLength = max(48, min(length - 2, Int(blob[0]) << 8 | Int(blob[1])))
            blob[0] = UInt8(frameLength >> 8)
            blob[1] = UInt8(frameLength & 0xff)
            let socket = try HostileSocket(from: source, to: world.relay.port)
            _ = socket.send(blob)
            let outcome = socket.waitForClose(within: 5)
            #expect(outcome.closed, "\(length) random bytes from \(source): the relay kept the connection open")
            #expect(outcome.received.isEmpty, "the relay answered garbage with \(outcome.received.count) bytes")
            #expect(outcome.seconds < HostileLimits.frameTimeout, "closed by the first frame, not by a timer (\(outcome.seconds) s)")
            #expect(world.eventually { world.relayLog(peer: source).contains { $0.contains("does not know this relay's key") } },
                    "log for \(source):\n\(world.relayLog(peer: source).joined(separator: "\n"))")
        }
        try world.expectHealthy()
    }

    @Test("an HTTP request, a TLS ClientHello or an SSH banner: closed at their first two bytes, nothing written back")
    func protocolScanners() throws {
        let world = try RelayWorld(members: ["alice@jakarta"], relayEnvironment: HostileLimits.environment)
        // A TLS 1.2 record header and the start of a ClientHello (0x16 0x03 reads as a 5635-byte frame).
        let tls: [UInt8] = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03] + [UInt8](repeating: 0x42, count: 32)
        let probes: [(String, [UInt8])] = [
            ("HTTP", Array("GET / HTTP/1.1\r\nHost: relay.example\r\nUser-Agent: scanner\r\nAccept: */*\r\n\r\n".utf8)),
            ("TLS", tls),
            ("SSH", Array("SSH-2.0-OpenSSH_9.6\r\n".utf8)),
        ]
        // Opened together, so that the three timers run at once.
        let sockets = try probes.indices.map { try HostileSocket(from: "127.0.0.\(2 + $0)", to: world.relay.port) }
        for (socket, probe) in zip(sockets, probes) { #expect(socket.send(probe.1), "\(probe.0)") }
        for (index, (socket, probe)) in zip(sockets, probes).enumerated() {
            let outcome = socket.waitForClose(within: 5)
            #expect(outcome.closed, "\(probe.0): the relay kept the connection open")
            #expect(outcome.received.isEmpty, "\(probe.0): the relay answered with \(outcome.received.count) bytes")
            // Each starts with a length longer than any first handshake message (1248 bytes):
            // closed as soon as it is read, without waiting for a timer.
            #expect(outcome.seconds < HostileLimits.frameTimeout, "\(probe.0): closed after \(outcome.seconds) s")
            let source = "127.0.0.\(2 + index)"
            #expect(world.eventually { world.relayLog(peer: source).contains { $0.contains("does not know this relay's key") } },
                    "\(probe.0): \(world.relayLog(peer: source).joined(separator: "\n"))")
        }
        try world.expectHealthy()
    }

    // MARK: 2. A correct first message under another prologue

    @Test("a correct Noise_XKhfs first message with another prologue is dropped without a word")
    func wrongPrologue() throws {
        let world = try RelayWorld(members: ["alice@jakarta"], relayEnvironment: HostileLimits.environment)
        let relayKey = try world.relayKey()

        // The control: the same message with the right prologue gets the relay's reply.
        var honest = try NoiseClient(key: AgreementPrivateKey(), relayKey: relayKey)
        let control = try HostileSocket(from: "127.0.0.2", to: world.relay.port)
        #expect(control.send(try honest.firstMessage()))
        let reply = control.readFrame(within: 5)
        #expect(reply?.count == 1152, "the relay's e, ee, ekem1: 32 + 1088 + 16 + 16 bytes")
        control.close()

        for prologue in ["valise/2", "valise/0", "", "Noise"] {
            var client = try NoiseClient(key: AgreementPrivateKey(), relayKey: relayKey, prologue: Array(prologue.utf8))
            let socket = try HostileSocket(from: "127.0.0.3", to: world.relay.port)
            #expect(socket.send(try client.firstMessage()))
            let outcome = socket.waitForClose(within: 5)
            #expect(outcome.closed, "prologue \"\(prologue)\": still open")
            #expect(outcome.received.isEmpty, "prologue \"\(prologue)\": the relay answered \(outcome.received.count) bytes")
            #expect(outcome.seconds < HostileLimits.frameTimeout, "prologue \"\(prologue)\": closed after \(outcome.seconds) s, by a timer?")
        }
        #expect(world.eventually {
            world.relayLog(peer: "127.0.0.3").filter { $0.contains("dropped a connection that does not know this relay's key") }.count == 4
        }, "\(world.relayLog(peer: "127.0.0.3").joined(separator: "\n"))")
        try world.expectHealthy()
    }

    @Test("an enrolled key whose third handshake message is damaged is closed without an answer")
    func damagedThirdMessage() throws {
        let world = try RelayWorld(members: ["alice@jakarta"], relayEnvironment: HostileLimits.environment)
        var client = try NoiseClient(key: try world.transportKey("alice@jakarta"), relayKey: try world.relayKey())
        let socket = try HostileSocket(from: "127.0.0.2", to: world.relay.port)
        #expect(socket.send(try client.firstMessage()))
        let reply = try #require(socket.readFrame(within: 5), "no handshake reply")
        var third = try client.finish(reply: reply)
        third[third.count - 1] ^= 0x01
        #expect(socket.send(third))
        let outcome = socket.waitForClose(within: 5)
        #expect(outcome.closed && outcome.received.isEmpty, "open: \(!outcome.closed); answered \(outcome.received.count) bytes")
        #expect(outcome.seconds < HostileLimits.frameTimeout, "closed after \(outcome.seconds) s")
        #expect(world.eventually { world.relayLog(peer: "127.0.0.2").contains { $0.contains("handshake failed") } },
                "\(world.relayLog(peer: "127.0.0.2").joined(separator: "\n"))")
        #expect(!world.relayLog(peer: "127.0.0.2").contains { $0.contains("admitted") })
        try world.expectHealthy()
    }

    // MARK: 3. A truncated frame

    @Test("a frame announced as 1248 bytes (before the handshake) or 65535 (after) that stops after 10: closed by the frame timeout")
    func truncatedFrame() throws {
        let world = try RelayWorld(members: ["alice@jakarta"], relayEnvironment: HostileLimits.environment)
        let socket = try HostileSocket(from: "127.0.0.2", to: world.relay.port)
        // The longest frame the relay takes before the handshake: a first message's length.
        #expect(socket.send([0x04, 0xE0] + [UInt8](repeating: 0xa5, count: 10)))
        let outcome = socket.waitForClose(within: 6)
        #expect(outcome.closed, "still open after 6 s")
        #expect(outcome.received.isEmpty)
        #expect(outcome.seconds > HostileLimits.frameTimeout - 0.2 && outcome.seconds < HostileLimits.handshakeTimeout + 1,
                "closed after \(outcome.seconds) s; the frame timeout is \(HostileLimits.frameTimeout) s, the handshake timeout \(HostileLimits.handshakeTimeout) s")
        #expect(world.eventually { world.relayLog(peer: "127.0.0.2").contains { $0.contains("a frame stayed incomplete for 1.0 s") } },
                "\(world.relayLog(peer: "127.0.0.2").joined(separator: "\n"))")

        // The same after admission, where no handshake timer runs: an enrolled device that
        // starts a frame and stops is told (timeout) and closed.
        let (admitted, client) = try world.admittedClient(from: "127.0.0.3")
        var session = client
        #expect(admitted.send([0xff, 0xff] + [UInt8](repeating: 0xa5, count: 10)))
        let late = admitted.waitForClose(within: 6)
        #expect(late.closed, "an admitted connection with a truncated frame: still open after 6 s")
        #expect(late.seconds > HostileLimits.frameTimeout - 0.2 && late.seconds < HostileLimits.frameTimeout + 1.5, "closed after \(late.seconds) s")
        let notice = try session.openAll(late.received).first
        #expect(notice?.error.code == .timeout, "the relay's last word: \(String(describing: notice))")
        try world.expectHealthy()
    }

    // MARK: 4. A zero-length frame

    @Test("a frame with length prefix 0 is closed at once, before and after the handshake")
    func zeroLengthFrame() throws {
        let world = try RelayWorld(members: ["alice@jakarta"], relayEnvironment: HostileLimits.environment)
        let socket = try HostileSocket(from: "127.0.0.2", to: world.relay.port)
        #expect(socket.send([0x00, 0x00]))
        let outcome = socket.waitForClose(within: 5)
        #expect(outcome.closed && outcome.received.isEmpty, "open: \(!outcome.closed); answered \(outcome.received.count) bytes")
        #expect(outcome.seconds < HostileLimits.frameTimeout, "closed after \(outcome.seconds) s, not at once")

        // In the middle of the handshake: after a valid first message.
        var client = try NoiseClient(key: try world.transportKey("alice@jakarta"), relayKey: try world.relayKey())
        let middle = try HostileSocket(from: "127.0.0.3", to: world.relay.port)
        #expect(middle.send(try client.firstMessage()))
        #expect(middle.readFrame(within: 5) != nil)
        #expect(middle.send([0x00, 0x00]))
        let midway = middle.waitForClose(within: 5)
        #expect(midway.closed && midway.seconds < HostileLimits.frameTimeout, "mid-handshake: open \(!midway.closed) after \(midway.seconds) s")

        // Admitted and greeted.
        let (admitted, _) = try world.admittedClient(from: "127.0.0.4")
        #expect(admitted.send([0x00, 0x00]))
        let late = admitted.waitForClose(within: 5)
        #expect(late.closed && late.seconds < HostileLimits.frameTimeout, "admitted: open \(!late.closed) after \(late.seconds) s")

        #expect(world.eventually {
            ["127.0.0.2", "127.0.0.3", "127.0.0.4"].allSatisfy { peer in
                world.relayLog(peer: peer).contains { $0.contains("a frame with length 0") }
            }
        }, "\(world.relay.log)")
        try world.expectHealthy()
    }

    // MARK: 5. Bytes after the relay closed

    @Test("writing on after the relay closed, in the same burst and after it, does not hurt the relay")
    func bytesAfterClose() throws {
        let world = try RelayWorld(members: ["alice@jakarta"], relayEnvironment: HostileLimits.environment)
        var random = SplitMix64(seed: 5)
        let junk = random.bytes(64 * 1024)
        var refusedWrites = 0
        for index in 0..<20 {
            let source = "127.0.5.\(1 + index)"
            let socket = try HostileSocket(from: source, to: world.relay.port)
            // The fatal frame, with more behind it in the same write: a zero-length frame, or
            // a whole undecryptable first message.
            let fatal: [UInt8] = index % 2 == 0 ? [0x00, 0x00] : FrameDecoder.frame(random.bytes(48))
            _ = socket.send(fatal + junk)
            // Then keep writing until the kernel reports the relay gone (bounded: 3 s).
            let deadline = Date().addingTimeInterval(3)
            var failed = false
            while !failed && Date() < deadline {
                failed = !socket.send(junk, within: 0.2)
            }
            if failed { refusedWrites += 1 }
            let outcome = socket.waitForClose(within: 2)
            #expect(outcome.closed, "\(source): still open")
            #expect(outcome.received.isEmpty, "\(source): the relay answered \(outcome.received.count) bytes")
            #expect(world.relay.isRunning, "the relay died after connection \(index)")
        }
        // Every one of the connections ends in a write error (EPIPE or ECONNRESET): the relay
        // closed it and does not read on.
        #expect(refusedWrites == 20, "\(refusedWrites) of 20 writers saw the connection fail")
        try world.expectHealthy()
    }

    // MARK: 6. An oversize reassembled message

    @Test("an enrolled device's fragments adding up to more than the message limit: closed")
    func oversizeMessage() throws {
        let world = try RelayWorld(members: ["alice@jakarta"], relayEnvironment: HostileLimits.environment)
        let (socket, greeted) = try world.admittedClient(from: "127.0.0.2")
        var client = greeted
        // Fragments of 30000 bytes with "more follow": the third takes the message past 64 KiB.
        let chunk = [UInt8](repeating: 0x08, count: 30_000)
        var sent = 0
        var accepted = true
        for _ in 0..<4 where accepted {
            accepted = socket.send(try client.fragment([MessageFragments.moreChunks] + chunk))
            if accepted { sent += chunk.count }
        }
        let outcome = socket.waitForClose(within: 5)
        #expect(outcome.closed, "still open after \(sent) bytes of fragments")
        #expect(outcome.seconds < HostileLimits.frameTimeout, "closed after \(outcome.seconds) s")
        #expect(world.eventually {
            world.relayLog(peer: "127.0.0.2").contains { $0.contains("a message larger than the \(HostileLimits.maximumMessageBytes)-byte limit") }
        }, "\(world.relayLog(peer: "127.0.0.2").joined(separator: "\n"))")

        // At the boundary: a message of exactly 65536 bytes is reassembled and handed on (it
        // does not decode, so the relay answers bad-request and closes); one byte more is
        // cut off without an answer.
        let full = [MessageFragments.moreChunks] + [UInt8](repeating: 0xff, count: MessageFragments.maximumChunk)
        let rest = HostileLimits.maximumMessageBytes - MessageFragments.maximumChunk
        let (atLimit, atLimitGreeted) = try world.admittedClient(from: "127.0.0.3")
        var atLimitClient = atLimitGreeted
        #expect(atLimit.send(try atLimitClient.fragment(full)))
        #expect(atLimit.send(try atLimitClient.fragment([MessageFragments.lastChunk] + [UInt8](repeating: 0xff, count: rest))))
        let answered = atLimit.waitForClose(within: 5)
        let answer = try atLimitClient.openAll(answered.received).first
        #expect(answer?.error.code == .badRequest, "a \(HostileLimits.maximumMessageBytes)-byte message: \(String(describing: answer))")

        let (overLimit, overLimitGreeted) = try world.admittedClient(from: "127.0.0.4")
        var overLimitClient = overLimitGreeted
        #expect(overLimit.send(try overLimitClient.fragment(full)))
        _ = overLimit.send(try overLimitClient.fragment([MessageFragments.lastChunk] + [UInt8](repeating: 0xff, count: rest + 1)))
        let cut = overLimit.waitForClose(within: 5)
        #expect(cut.closed && cut.received.isEmpty, "a \(HostileLimits.maximumMessageBytes + 1)-byte message: open \(!cut.closed), answered \(cut.received.count) bytes")
        #expect(world.eventually {
            world.relayLog(peer: "127.0.0.4").contains { $0.contains("a message larger than the \(HostileLimits.maximumMessageBytes)-byte limit") }
        })
        try world.expectHealthy()
    }

    // MARK: 9. An unknown key

    @Test("a key not in the directory completes the handshake, gets an encrypted not-admitted error, and is closed")
    func unknownKey() throws {
        let world = try RelayWorld(members: ["alice@jakarta"], relayEnvironment: HostileLimits.environment)
        var client = try NoiseClient(key: AgreementPrivateKey(), relayKey: try world.relayKey())
        let socket = try HostileSocket(from: "127.0.0.2", to: world.relay.port)
        #expect(socket.send(try client.firstMessage()))
        let reply = try #require(socket.readFrame(within: 5), "no handshake reply")
        #expect(socket.send(try client.finish(reply: reply)))
        let outcome = socket.waitForClose(within: 5)
        #expect(outcome.closed, "still open")
        #expect(outcome.seconds < HostileLimits.frameTimeout, "closed after \(outcome.seconds) s")
        let messages = try client.openAll(outcome.received)
        #expect(messages.count == 1, "one message, then the close: \(messages)")
        let error = messages.first?.error
        #expect(error?.code == .notAdmitted)
        #expect(error?.message.contains("not a current device or admin key") == true, "\(String(describing: error))")
        #expect(world.eventually {
            world.relayLog(peer: "127.0.0.2").contains { $0.contains("refused a key that is not a current device or admin key") }
        })
        try world.expectHealthy()
    }
}
