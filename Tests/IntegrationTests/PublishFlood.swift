import Foundation
import Synchronization
import Testing
import ValiseClient
import ValiseCrypto
import ValiseDirectory
import ValiseWire

/// A RelayWorld for publish floods: a second admin, consul, with the registrar making the
/// organisation 2 of 2; mallory, a device that floods; and admin-signed revocations of
/// carol and then bob, made (both admins signed) but not published yet.
final class PublishFloodWorld {
    let world: RelayWorld
    /// The second admin's keys (its transport key floods in the second run).
    let consul: AdminKeys
    /// Carol's revocation, then Bob's, in log order.
    let revocations: [DirectoryEntry]
    /// The organisation's log up to the relay's head before the revocations.
    let published: [DirectoryEntry]

    init() throws {
        world = try RelayWorld(members: ["alice@jakarta", "bob@jakarta", "carol@nairobi", "mallory@jakarta"])
        let world = self.world
        try world.valise(["admin", "keygen", "--out", world.path("consul"), "--name", "consul"] + world.insecure)
        let registrar = OrganisationDirectory(path: world.path("org")).defaultKeys.adminPublicPath
        try world.valise(
            ["admin", "set-admins", "--admin-pub", registrar, "--admin-pub", world.path("consul/admin.pub"), "--threshold", "2"] + world.org)
        try world.valise(["admin", "publish", "--relay", "hq", "--relay-address", world.relay.address] + world.org)
        for member in ["carol@nairobi", "bob@jakarta"] {
            try world.valise(["admin", "revoke", member, "--reason", "left the service", "--yes"] + world.org)
            let pending = try FileManager.default.contentsOfDirectory(atPath: world.path("org/pending")).filter { $0.hasSuffix(".pending") }
            let file = try #require(pending.first, "no pending revocation of \(member)")
            try world.valise(["admin", "sign", "--key", world.path("consul"), world.path("org/pending/" + file), "--yes"] + world.org)
        }
        let log = try DirectoryFileReader.read(world.path("org/directory.log")).entries
        revocations = Array(log.suffix(2))
        published = Array(log.dropLast(2))
        consul = try KeyDirectory(path: world.path("consul")).adminKey
            .unlock(passphrase: SecretBytes(copying: Array(world.passphrase.utf8))).payload
    }

    /// A publish of about 1 MiB of entries continuing `head` (at `sequence`), each revoking
    /// `target` and signed by every key of `signers`: the attacker's own keys, or one admin
    /// (below a threshold of 2).
    static func floodPublish(sequence: UInt64, head: EntryHash, target: String, signers: [SigningKey]) throws -> WireDirectoryPublish {
        let now = UInt64(Date().timeIntervalSince1970)
        let body = EntryBody.revoke(Revocation(target: .member(try MemberName(target)), reason: "flood"))
        var publish = WireDirectoryPublish()
        var previous = head
        var bytes = 0
        // Room for the ClientMessage around the entries (request id, field tags, lengths).
        while true {
            var entry = DirectoryEntry(
                sequence: sequence + UInt64(publish.entries.count), previousHash: previous, timestamp: now, body: body)
            for key in signers { entry = entry.signed(by: key) }
            let encoded = entry.encoded()
            guard bytes + encoded.count + 8 <= (1 << 20) - 256 else { break }
            bytes += encoded.count + 8
            publish.entries.append(Data(encoded))
            previous = entry.hash
        }
        return publish
    }

    /// The organisation's log entries the relay holds now, by count.
    func head(after count: Int) -> EntryHash {
        (published + revocations)[count - 1].hash
    }
}

extension NoiseClient {
    /// `message`, fragmented as a large message must be, sealed and framed.
    mutating func sealFragmented(_ message: WireClientMessage) throws -> [UInt8] {
        var frames: [UInt8] = []
        for chunk in MessageFragments.split(WireCodec.encode(message)) { frames += try fragment(chunk) }
        return frames
    }
}

/// `count` publishes written down one raw connection as fast as the relay reads them, their
/// answers read as they come, and the relay's resident memory sampled meanwhile: on a
/// thread of its own, bounded by `seconds`.
final class PublishFlood: Sendable {
    struct Progress: Sendable {
        var bytesWritten = 0
        var publishesWritten = 0
        /// The error code of each answer, or nil for DirectoryPublished.
        var answers: [WireErrorCode?] = []
        var largestResidentKiB = 0
        var closed = false
        var done = false
        var failure: String?
    }

    let count: Int
    let progress = Mutex(Progress())

    /// Seals every publish before anything is written (the flood then only writes).
    init(socket: HostileSocket, client: NoiseClient, publish: WireDirectoryPublish, count: Int, relayPID: pid_t, seconds: Double) throws {
        self.count = count
        var client = client
        var frames: [UInt8] = []
        var offsets: [Int] = []
        for index in 0..<count {
            var message = WireClientMessage()
            message.requestID = UInt64(1000 + index)
            message.directoryPublish = publish
            frames += try client.sealFragmented(message)
            offsets.append(frames.count)
        }
        let box = UncheckedBox((socket, client))
        Thread { [self, frames, offsets] in
            var (socket, client) = box.value
            run(socket: socket, client: &client, frames: frames, ends: offsets, pid: relayPID, seconds: seconds)
        }.start()
    }

    var snapshot: Progress { progress.withLock { $0 } }

    /// Waits (bounded) until `condition` holds of the progress.
    func wait(within seconds: Double, until condition: (Progress) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while !condition(snapshot) && Date() < deadline { usleep(5_000) }
        return condition(snapshot)
    }

    private func run(socket: HostileSocket, client: inout NoiseClient, frames: [UInt8], ends: [Int], pid: pid_t, seconds: Double) {
        let deadline = Date().addingTimeInterval(seconds)
        var decoder = FrameDecoder()
        var written = 0
        var lastSample = Date.distantPast
        defer { progress.withLock { $0.done = true } }
        while Date() < deadline {
            if Date().timeIntervalSince(lastSample) > 0.02 {
                lastSample = Date()
                let resident = RelayProcess.residentKiB(of: pid)
                progress.withLock { $0.largestResidentKiB = max($0.largestResidentKiB, resident) }
            }
            if written < frames.count {
                let sent = socket.sendSome(Array(frames[written..<min(written + 256 * 1024, frames.count)]))
                if sent < 0 {
                    progress.withLock { $0.closed = true }
                    return
                }
                written += sent
                let publishes = ends.prefix { $0 <= written }.count
                progress.withLock {
                    $0.bytesWritten = written
                    $0.publishesWritten = publishes
                }
                if sent == 0 { socket.waitWritable(milliseconds: 2) }
            }
            guard let chunk = socket.readAvailable(waitMilliseconds: written < frames.count ? 0 : 10) else {
                progress.withLock { $0.closed = true }
                return
            }
            decoder.append(chunk)
            do {
                while let frame = try decoder.nextFrame() {
                    let answer = try client.open(frame)
                    let code: WireErrorCode?
                    if case .error(let error)? = answer.body { code = error.code } else { code = nil }
                    progress.withLock { $0.answers.append(code) }
                }
            } catch {
                progress.withLock { $0.failure = "\(error)" }
                return
            }
            if progress.withLock({ $0.answers.count }) >= count { return }
        }
    }
}

/// Hands values that are used by one thread at a time to that thread.
struct UncheckedBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// `valise sync` of one member (through its agent), again and again on a thread of its own
/// until told to stop (at least `minimum` times), each timed.
final class SyncLoop: Sendable {
    struct Run: Sendable {
        let seconds: Double
        let status: Int32
        let stderr: String
    }

    let runs = Mutex<[Run]>([])
    private let stopped = Mutex(false)
    private let finished = Mutex(false)

    init(home: String, relay: String, minimum: Int, maximum: Int = 50) {
        Thread { [self] in
            defer { finished.withLock { $0 = true } }
            while runs.withLock({ $0.count }) < maximum && (runs.withLock({ $0.count }) < minimum || !stopped.withLock({ $0 })) {
                let started = Date()
                let result = try? ValiseCLI.run(["sync", "--home", home, "--relay", relay])
                let run = Run(seconds: Date().timeIntervalSince(started), status: result?.status ?? -1, stderr: result?.stderr ?? "did not run")
                runs.withLock { $0.append(run) }
            }
        }.start()
    }

    /// Stops after the sync under way (and the minimum), and waits (bounded) for it.
    func stop(within seconds: Double = 60) -> [Run] {
        stopped.withLock { $0 = true }
        let deadline = Date().addingTimeInterval(seconds)
        while !finished.withLock({ $0 }) && Date() < deadline { usleep(10_000) }
        return runs.withLock { $0 }
    }
}
