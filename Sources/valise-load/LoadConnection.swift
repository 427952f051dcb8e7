import Foundation
import NIOCore
import ValiseClient
import ValiseCrypto
import ValiseDirectory

/// What both commands need: the device's keys, the relay from its pinned directory, and a
/// connection that is made again (bounded) when the relay goes away.
struct LoadDevice {
    let identity: DeviceIdentity
    let target: DirectorySync.Target

    init(home: String, relay: String?) throws {
        let home = ValiseHome(path: home)
        let passphrase = try PassphraseReader().read(from: .environment("VALISE_PASSPHRASE"), prompt: "")
        identity = try DeviceKeystore(home: home).unlock(passphrase: passphrase).identity
        let state = try PinnedOrganisation(home: home).load(now: UInt64(Date().timeIntervalSince1970)).state
        // The device's home relay, as its verified directory names it (--relay: another address).
        target = try DeviceSession.homeTarget(in: state, member: identity.memberName, name: nil, address: relay)
    }

    /// Connects, retrying every 100 ms until `deadline`.
    func connect(until deadline: Date) async throws -> RelayClient {
        var lastError: (any Error)?
        while Date() < deadline {
            do {
                let (client, _) = try await RelayClient.connect(
                    host: target.host, port: target.port, clientKey: identity.transportKey, relayKey: target.relay.noiseKey,
                    timeout: .seconds(5))
                return client
            } catch {
                lastError = error
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        throw lastError ?? CancellationError()
    }
}

/// An append-only log of message ids, one hex id per line, flushed to disk line by line.
final class IDLog: @unchecked Sendable {
    private let handle: FileHandle
    private let lock = NSLock()

    init(path: String) throws {
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
    }

    /// Appends and fsyncs: once this returns, the line survives a crash.
    func append(_ line: String) throws {
        lock.lock()
        defer { lock.unlock() }
        try handle.write(contentsOf: Data((line + "\n").utf8))
        try handle.synchronize()
    }

    static func read(_ path: String) -> [String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").map(String.init)
    }
}

/// The id of message `number` of a run: deterministic, so a retry sends the same id.
func messageID(run: String, number: Int) -> [UInt8] {
    Array(BLAKE2b.hash(Array("\(run)/\(number)".utf8), outputByteCount: 16))
}
