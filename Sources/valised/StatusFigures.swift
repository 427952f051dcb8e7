import Foundation
import ValiseDirectory
import ValiseRelay
import ValiseStore
#if canImport(Glibc)
import Glibc
#endif

/// Figures `valised status` adds beside the queue's: the running relay's (over its control
/// socket), the disk's, the pinned directory's checkpoint.
struct StatusFigures {
    /// nil: no relay runs (`relayProblem` says when one runs but did not answer).
    var live: ControlStatus?
    var relayProblem: String?
    /// queue.sqlite, -wal, -shm and -reserve, in bytes (in PostgreSQL: the store's tables and indexes).
    var storeBytes: Int
    /// "postgres PRIMARY-HOST/DATABASE" when the queue is in PostgreSQL (no file of its own).
    var postgres: String?
    /// Bytes free to the relay's user on the store's file system (nil if unknown).
    var diskFreeBytes: UInt64?
    var pinned: RelayDirectory.Pinned?
    var now: UInt64

    init(directory: String, storePath: String, postgres: String? = nil, now: UInt64) {
        self.now = now
        self.postgres = postgres
        do {
            live = try ControlClient.ask(directory: directory, ControlRequest(command: .status)).status
        } catch {
            live = nil
            relayProblem = error.notRunning ? nil : error.description
        }
        storeBytes = ["", "-wal", "-shm", "-reserve"].reduce(0) { total, suffix in
            let size = (try? FileManager.default.attributesOfItem(atPath: storePath + suffix))?[.size] as? Int
            return total + (size ?? 0)
        }
        var figures = statvfs()
        diskFreeBytes = statvfs(directory, &figures) == 0 ? UInt64(figures.f_bavail) * UInt64(figures.f_frsize) : nil
        pinned = RelayDirectory.pinned(directory: directory)
    }

    /// Seconds since the newest checkpoint was signed (0 for one from the future).
    var checkpointAge: UInt64? {
        pinned?.checkpoint.map { now > $0.time ? now - $0.time : 0 }
    }

    var relayObject: [String: Any] {
        guard let live else {
            var object: [String: Any] = ["running": false]
            if let relayProblem { object["problem"] = relayProblem }
            return object
        }
        return ["running": true, "processID": live.processID, "since": live.since, "connections": connections(live)]
    }

    var storeObject: [String: Any] {
        guard let postgres else { return ["kind": "sqlite"] }
        return ["kind": "postgres", "location": String(postgres.dropFirst("postgres ".count))]
    }

    var diskObject: [String: Any] {
        var object: [String: Any] = ["storeBytes": storeBytes]
        if let diskFreeBytes { object["freeBytes"] = diskFreeBytes }
        return object
    }

    var directoryObject: [String: Any]? {
        guard let pinned else { return nil }
        var object: [String: Any] = [
            "entries": pinned.entries, "warnAfterSeconds": pinned.freshness.warnAfterSeconds,
            "refuseAfterSeconds": pinned.freshness.refuseAfterSeconds,
        ]
        if let checkpoint = pinned.checkpoint, let age = checkpointAge {
            object["checkpoint"] = ["sequence": checkpoint.sequence, "time": checkpoint.time, "ageSeconds": age]
        }
        return object
    }

    /// Every role, zero for none.
    func connections(_ live: ControlStatus) -> [String: Int] {
        Dictionary(uniqueKeysWithValues: ConnectionRole.allCases.map { ($0.rawValue, live.connections[$0.rawValue] ?? 0) })
    }

    /// "1 device", "2 devices".
    static func count(_ number: Int, _ noun: String) -> String { "\(number) \(noun)\(number == 1 ? "" : "s")" }

    func printText() {
        if let live {
            let open = connections(live)
            print("relay:      running, PID \(live.processID), since \(Valised.Status.time(live.since)); open connections: \(Self.count(open["device"] ?? 0, "device")), \(Self.count(open["admin"] ?? 0, "admin")), \(Self.count(open["relay"] ?? 0, "relay"))")
        } else if let relayProblem {
            print("relay:      not answering (\(relayProblem))")
        } else {
            print("relay:      not running")
        }
        let free = diskFreeBytes.map { "\($0) bytes free" } ?? "free space unknown"
        if let postgres {
            print("store:      \(postgres), \(storeBytes) bytes (tables and indexes)")
            print("disk:       \(free) (the relay's directory; the queue is in PostgreSQL)")
        } else {
            print("disk:       store \(storeBytes) bytes (queue, log and reserve), \(free)")
        }
        guard let pinned else {
            print("directory:  no pinned organisation.bundle")
            return
        }
        var line = "directory:  \(pinned.entries) entries"
        if let checkpoint = pinned.checkpoint, let age = checkpointAge {
            line += "; newest checkpoint at entry \(checkpoint.sequence), \(Valised.Status.time(checkpoint.time)), \(age) s old"
            line += age > UInt64(pinned.freshness.warnAfterSeconds) ? " (older than the organisation's warning bound, \(pinned.freshness.warnAfterSeconds) s)"
                : " (warning bound \(pinned.freshness.warnAfterSeconds) s)"
        } else {
            line += "; no checkpoint"
        }
        print(line)
    }
}
