import Foundation
import Testing
import ValiseCrypto
import ValiseWire

// Clients that attack with time and numbers rather than with malformed bytes: a slow
// sender, a thousand half-open connections, and two behaviours that once exposed relay bugs
// (a steady stream cut off by the frame timer; a client that never reads its answers).
extension RelayHostileInputTests {
    // MARK: 7. A slow sender

    @Test("one byte every 300 ms: closed by the frame timeout, not kept alive by the idle timer")
    func slowSender() throws {
        let world = try RelayWorld(members: ["alice@jakarta"], relayEnvironment: HostileLimits.environment)
        // Before the handshake: a valid-looking first message, dribbled.
        var stranger = try NoiseClient(key: AgreementPrivateKey(), relayKey: try world.relayKey())
        let early = try HostileSocket(from: "127.0.0.2", to: world.relay.port)
        let first = try stranger.firstMessage()
        let before = early.dribble(first, interval: 0.3, within: 6)
        #expect(before.closed, "a dribbling stranger was kept for 6 s")
        #expect(before.received.isEmpty)
        #expect(before.seconds < HostileLimits.frameTimeout + 1.5, "closed after \(before.seconds) s and \(before.bytesSent) bytes")

        // After admission, where only the frame timer can end it: every byte resets the idle
        // timer, and the handshake timer is gone.
        let (socket, greeted) = try world.admittedClient(from: "127.0.0.3")
        var client = greeted
        var ping = WireClientMessage()
        ping.requestID = 2
        ping.ping = WirePing()
        ping.ping.data = Data(repeating: 7, count: 64)
        let frame = try client.seal(ping)
        let after = socket.dribble(frame, interval: 0.3, within: 6)
        #expect(after.closed, "an admitted device dribbling one byte per 300 ms was kept for 6 s")
        #expect(after.seconds < HostileLimits.frameTimeout + 1.5, "closed after \(after.seconds) s and \(after.bytesSent) of \(frame.count) bytes")
        let notice = try client.openAll(after.received).first
        #expect(notice?.error.code == .timeout, "the relay's last word: \(String(describing: notice))")
        #expect(notice?.error.message.contains("a frame stayed incomplete") == true)
        try world.expectHealthy()
    }

    @Test("a device streaming frames that each complete within 100 ms is not cut off by the frame timer")
    func steadyStreamAcrossFrameBoundaries() throws {
        let world = try RelayWorld(members: ["alice@jakarta"], relayEnvironment: HostileLimits.environment)
        let (socket, greeted) = try world.admittedClient(from: "127.0.0.2")
        var client = greeted
        // Pings, written so that each write ends half-way through a frame: the relay never
        // sees its buffer empty, yet no frame stays incomplete for more than ~100 ms.
        let count = 30
        var stream: [UInt8] = []
        for id in 0..<count {
            var ping = WireClientMessage()
            ping.requestID = UInt64(10 + id)
            ping.ping = WirePing()
            ping.ping.data = Data(repeating: UInt8(id), count: 32)
            stream += try client.seal(ping)
        }
        let frameLength = stream.count / count
        let started = Date()
        var nextWrite = started
        var offset = 0
        var replies: [UInt8] = []
        var open = true
        // A frame's worth every 100 ms, cut mid-frame: three seconds of steady progress.
        while open && Date().timeIntervalSince(started) < 5 && (offset < stream.count || Date() < nextWrite) {
            if offset < stream.count && Date() >= nextWrite {
                let end = min(stream.count, offset == 0 ? frameLength / 2 : offset + frameLength)
                open = socket.send(Array(stream[offset..<end]))
                offset = end
                nextWrite = nextWrite.addingTimeInterval(0.1)
            }
            guard let chunk = socket.readAvailable(waitMilliseconds: 10) else { open = false; break }
            replies += chunk
        }
        let seconds = Date().timeIntervalSince(started)
        let messages = (try? client.openAll(replies)) ?? []
        let pongs = messages.filter { if case .pong = $0.body { true } else { false } }.count
        let closing = messages.first { if case .error = $0.body { true } else { false } }
        let closingLog = world.relayLog(peer: "127.0.0.2").filter { $0.contains("closing connection") }
        // Regression: the frame timer once measured the time since the buffer was last
        // empty, so such a stream was cut off after one frame timeout.
        #expect(open && pongs == count,
                """
                closed after \(String(format: "%.2f", seconds)) s with \(pongs) of \(count) pongs; \
                the relay said \(closing.map { "\($0.error.code): \($0.error.message)" } ?? "nothing"); log: \(closingLog)
                """)
        socket.close()
        try world.expectHealthy()
    }

    // MARK: 8. A thousand half-open connections

    @Test("a thousand half-open connections from 25 addresses: refused or timed out, memory bounded, service goes on")
    func halfOpenFlood() throws {
        let world = try RelayWorld(members: ["alice@jakarta"], relayEnvironment: HostileLimits.environment)
        _ = try world.sync("alice@jakarta")
        let rssBefore = world.relay.residentKiB
        let addresses = 25
        let perAddress = 40

        // Waves of 5 addresses × 40 connections (200, inside the relay's listen backlog of
        // 256), each wave once the relay has accepted or refused the one before. Every other
        // connection sends one byte (the start of a length prefix); the rest send nothing.
        var sockets: [HostileSocket] = []
        let opening = Date()
        for wave in 0..<(addresses / 5) {
            var batch: [HostileSocket] = []
            for address in (wave * 5)..<(wave * 5 + 5) {
                for _ in 0..<perAddress {
                    batch.append(try HostileSocket(from: "127.0.1.\(1 + address)", to: world.relay.port, wait: false))
                }
            }
            for socket in batch { #expect(socket.finishConnecting(within: 3), "connect from \(socket.source)") }
            for (index, socket) in batch.enumerated() where index % 2 == 1 { socket.send([0x00], within: 0.1) }
            sockets += batch
            let seen = world.eventually(within: 3) { world.floodLog().seen >= sockets.count }
            #expect(seen, "the relay saw \(world.floodLog().seen) of \(sockets.count) connections")
        }
        let openedIn = Date().timeIntervalSince(opening)
        let rssDuring = world.relay.residentKiB
        let heldNow = sockets.filter { !$0.isClosed }.count

        // A well-behaved device on 127.0.0.1 syncs while they are held.
        let syncStart = Date()
        let sync = try world.sync("alice@jakarta")
        let syncSeconds = Date().timeIntervalSince(syncStart)
        let heldAfterSync = sockets.filter { !$0.isClosed }.count

        // The timers end the rest, within the handshake timeout of their accept.
        let allClosed = world.eventually(within: HostileLimits.handshakeTimeout + 3) { sockets.allSatisfy { $0.isClosed } }
        let closedIn = Date().timeIntervalSince(opening)
        let counts = world.floodLog()
        let rssAfter = world.relay.residentKiB
        print("""
            half-open flood: \(sockets.count) connections from \(addresses) addresses opened in \
            \(String(format: "%.2f", openedIn)) s; \(heldNow) held when the last wave was in; \
            the sync took \(String(format: "%.2f", syncSeconds)) s, with \(heldAfterSync) still held after it; \
            all closed after \(String(format: "%.2f", closedIn)) s. Relay log: \(counts.opened) accepted, \
            \(counts.refusedPerAddress) refused by the per-address limit, \(counts.refusedOther) refused otherwise, \
            \(counts.handshakeTimeouts) handshake timeouts, \(counts.frameTimeouts) frame timeouts. \
            Relay RSS: \(rssBefore) KiB before, \(rssDuring) KiB with them open, \(rssAfter) KiB after \
            (+\(rssDuring - rssBefore) KiB, +\(rssAfter - rssBefore) KiB)
            """)
        #expect(sync.status == 0)
        #expect(allClosed, "\(sockets.filter { !$0.isClosed }.count) connections still open after \(closedIn) s")
        // Per address: 16 accepted and held until a timer, 24 refused at once.
        #expect(counts.opened == addresses * HostileLimits.connectionsPerAddress)
        #expect(counts.refusedPerAddress == addresses * (perAddress - HostileLimits.connectionsPerAddress))
        #expect(counts.handshakeTimeouts + counts.frameTimeouts == counts.opened,
                "every accepted connection ends by a timer: \(counts.handshakeTimeouts) + \(counts.frameTimeouts) of \(counts.opened)")
        #expect(counts.frameTimeouts > 0 && counts.handshakeTimeouts > 0)
        #expect(rssDuring - rssBefore < 150 * 1024 && rssAfter - rssBefore < 150 * 1024,
                "RSS grew from \(rssBefore) KiB to \(rssDuring) KiB (during) and \(rssAfter) KiB (after)")
        for socket in sockets { socket.close() }

        // Then the same thousand at once, from 25 other addresses: more than the listen
        // backlog, so the kernel drops or cookies some (connections the relay never sees,
        // ESTABLISHED only on the attacker's side). The relay stays up and small, and serves.
        var burst: [HostileSocket] = []
        for address in 0..<addresses {
            for _ in 0..<perAddress { burst.append(try HostileSocket(from: "127.0.2.\(1 + address)", to: world.relay.port, wait: false)) }
        }
        let burstConnected = burst.filter { $0.finishConnecting(within: 1) }.count
        let burstSyncStart = Date()
        let burstSync = try world.sync("alice@jakarta")
        let burstSyncSeconds = Date().timeIntervalSince(burstSyncStart)
        let rssBurst = world.relay.residentKiB
        _ = world.eventually(within: HostileLimits.handshakeTimeout + 2) { world.floodLog(prefix: "127.0.2.").seen >= burst.count }
        let burstCounts = world.floodLog(prefix: "127.0.2.")
        print("""
            burst: \(burstConnected) of \(burst.count) connected at once; the relay saw \(burstCounts.seen) within \
            \(HostileLimits.handshakeTimeout + 2) s (\(burstCounts.opened) accepted, \(burstCounts.refusedPerAddress) refused per address, \
            \(burstCounts.refusedOther) refused otherwise); a sync meanwhile took \(String(format: "%.2f", burstSyncSeconds)) s; \
            relay RSS \(rssBurst) KiB
            """)
        #expect(burstSync.status == 0)
        #expect(world.relay.isRunning)
        #expect(rssBurst - rssBefore < 150 * 1024, "RSS grew from \(rssBefore) KiB to \(rssBurst) KiB")
        for socket in burst { socket.close() }
        try world.expectHealthy()
    }

    // MARK: Beyond the list: a device that never reads its answers

    @Test("an enrolled device that asks and never reads the answers cannot grow the relay's memory without bound")
    func neverReadingClient() throws {
        // A frame timeout long enough that only back-pressure can keep memory bounded.
        var limits = HostileLimits.environment
        limits["VALISED_LIMITS_FRAME_TIMEOUT_SECONDS"] = "30"
        let world = try RelayWorld(members: ["alice@jakarta"], relayEnvironment: limits)
        let (socket, greeted) = try world.admittedClient(from: "127.0.0.2")
        var client = greeted
        // The whole directory, again and again: a few dozen bytes in, the directory out.
        var fetch = WireClientMessage()
        fetch.requestID = 99
        fetch.directoryFetch = WireDirectoryFetch()
        let oneRequest = try client.seal(fetch)
        #expect(socket.send(oneRequest))
        let answer = try #require(socket.readFrame(within: 5), "no answer to a directory fetch")
        guard case .directoryEntries(let entries) = try client.open(answer).body else {
            Issue.record("not DirectoryEntries")
            return
        }
        #expect(entries.entries.count == 3)
        let rssBefore = world.relay.residentKiB

        let started = Date()
        var sentBytes = 0
        var peak = rssBefore
        var pending: [UInt8] = []
        var nextID: UInt64 = 100
        var failed = false
        // Requests for up to 6 s, never reading, while watching the relay's memory; enough
        // once it has grown past the bound. A relay that stops reading while the client does
        // not take its answers holds about one write buffer (NIO's high-water mark, 64 KiB)
        // and the kernel's socket buffers (not in its RSS); 24 MiB is far above that.
        let bound = 24 * 1024
        while Date().timeIntervalSince(started) < 6 && !failed && peak - rssBefore <= bound {
            if pending.isEmpty { pending = try client.directoryFetches(1_000, nextID: &nextID) }
            let written = socket.sendSome(pending)
            if written < 0 { failed = true } else if written > 0 { pending.removeFirst(written) }
            sentBytes += max(0, written)
            peak = max(peak, world.relay.residentKiB)
            if written == 0 { socket.waitWritable(milliseconds: 5) }
        }
        let seconds = Date().timeIntervalSince(started)
        // And a moment for the relay to work through what is buffered.
        _ = world.eventually(within: peak - rssBefore > bound ? 0 : 1) {
            peak = max(peak, world.relay.residentKiB)
            return false
        }
        let growth = peak - rssBefore
        // Requests are 23 to 25 bytes (the request id's varint grows).
        let sent = sentBytes / (oneRequest.count + 2)
        let queued = Double(sent) * Double(answer.count + 2) / 1_048_576
        print("""
            never-reading client: about \(sent) directory fetches (\(sentBytes / 1024) KiB) sent in \
            \(String(format: "%.2f", seconds)) s, each answered with \(answer.count + 2) bytes (\(String(format: "%.0f", queued)) MiB of answers in all); relay RSS \
            \(rssBefore) KiB before, peak \(peak) KiB (+\(growth) KiB); \
            relay log: \(world.relayLog(peer: "127.0.0.2").filter { $0.contains("clos") || $0.contains("error") })
            """)
        // Regression: the relay once kept reading and queued every answer in memory; now it
        // holds back reads while the channel is not writable.
        #expect(growth <= bound, "RSS grew by \(growth) KiB for one connection")
        #expect(world.relay.isRunning)
        socket.close()
        _ = world.eventually(within: 1) { world.relayLog(peer: "127.0.0.2").contains { $0.contains("connection closed") } }
        print("never-reading client: relay RSS \(world.relay.residentKiB) KiB once the connection closed")
        try world.expectHealthy()
    }
}

extension RelayWorld {
    /// What the relay's log says about the connections from addresses starting with `prefix`.
    fileprivate func floodLog(prefix: String = "127.0.1.") -> (opened: Int, refusedPerAddress: Int, refusedOther: Int, handshakeTimeouts: Int, frameTimeouts: Int, seen: Int) {
        var counts = (opened: 0, refusedPerAddress: 0, refusedOther: 0, handshakeTimeouts: 0, frameTimeouts: 0, seen: 0)
        for line in relay.log.split(separator: "\n") where line.contains("peer=\(prefix)") {
            if line.contains("connection opened") {
                counts.opened += 1
            } else if line.contains("refused a connection") {
                if line.contains("tooManyFromAddress") { counts.refusedPerAddress += 1 } else { counts.refusedOther += 1 }
            } else if line.contains("no admitted handshake within \(HostileLimits.handshakeTimeout) s") {
                counts.handshakeTimeouts += 1
            } else if line.contains("a frame stayed incomplete for \(HostileLimits.frameTimeout) s") {
                counts.frameTimeouts += 1
            }
        }
        counts.seen = counts.opened + counts.refusedPerAddress + counts.refusedOther
        return counts
    }
}
