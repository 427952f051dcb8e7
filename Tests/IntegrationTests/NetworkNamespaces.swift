import Foundation
import Testing

/// Network namespaces of the test's own, so that relays run as separate hosts: one
/// namespace per relay, each with a veth "cable" into a switch namespace (a bridge), all on
/// 10.213.N.0/24 (N from the process id), never any address outside them. Cutting a cable
/// (`cut`) partitions that relay; `mend` heals it. Everything is removed in `deinit`, and
/// processes in a namespace must be stopped before. Needs root and `ip`; `available` says
/// why not otherwise (the caller prints a SKIPPED line).
final class NetworkNamespaces {
    static let ip = "/usr/sbin/ip"
    static let tc = "/usr/sbin/tc"

    let prefix: String
    let subnet: String
    let switchName: String
    private(set) var hosts: [String: String] = [:]
    private var created: [String] = []

    /// Why namespaces cannot be made here, or nil.
    static var unavailable: String? {
        guard getuid() == 0 else { return "not root" }
        guard FileManager.default.isExecutableFile(atPath: ip) else { return "no \(ip)" }
        return nil
    }

    init(names: [String]) throws {
        let tag = getpid() % 200 + 20
        prefix = "vf\(tag)"
        subnet = "10.213.\(tag)"
        switchName = "\(prefix)-sw"
        try run(["netns", "add", switchName])
        created.append(switchName)
        try run(["netns", "exec", switchName, Self.ip, "link", "add", "br0", "type", "bridge"])
        try run(["netns", "exec", switchName, Self.ip, "link", "set", "br0", "up"])
        for (index, name) in names.enumerated() {
            let namespace = "\(prefix)-\(name)"
            try run(["netns", "add", namespace])
            created.append(namespace)
            try run(["netns", "exec", namespace, Self.ip, "link", "set", "lo", "up"])
            let (inside, outside) = ("\(prefix)h\(index)", "\(prefix)s\(index)")
            try run(["link", "add", inside, "netns", namespace, "type", "veth", "peer", "name", outside, "netns", switchName])
            let host = "\(subnet).\(index + 1)"
            try run(["netns", "exec", namespace, Self.ip, "addr", "add", "\(host)/24", "dev", inside])
            try run(["netns", "exec", namespace, Self.ip, "link", "set", inside, "up"])
            try run(["netns", "exec", switchName, Self.ip, "link", "set", outside, "master", "br0"])
            try run(["netns", "exec", switchName, Self.ip, "link", "set", outside, "up"])
            hosts[name] = host
        }
    }

    func namespace(_ name: String) -> String { "\(prefix)-\(name)" }

    /// `ip netns exec NS`, as a launcher before a program's path.
    func launcher(_ name: String) -> [String] { ["netns", "exec", namespace(name)] }

    /// Unplugs a relay's cable at the switch.
    func cut(_ name: String) throws { try setCable(name, "down") }
    func mend(_ name: String) throws { try setCable(name, "up") }

    private func setCable(_ name: String, _ state: String) throws {
        guard let index = hosts.keys.sorted(by: { hosts[$0]! < hosts[$1]! }).firstIndex(of: name) else { return }
        try run(["netns", "exec", switchName, Self.ip, "link", "set", "\(prefix)s\(index)", state])
    }

    /// Delay and loss on every cable, with tc netem, where the kernel has it; false if not.
    func impair(delayMilliseconds: Int, lossPercent: Double) -> Bool {
        var applied = true
        for index in 0..<hosts.count {
            let result = try? ValiseCLI.run(path: Self.ip, ["netns", "exec", switchName, Self.tc, "qdisc", "add", "dev", "\(prefix)s\(index)",
                                                           "root", "netem", "delay", "\(delayMilliseconds)ms", "loss", "\(lossPercent)%"])
            if result?.status != 0 { applied = false }
        }
        return applied
    }

    private func run(_ arguments: [String]) throws {
        let result = try ValiseCLI.run(path: Self.ip, arguments)
        guard result.status == 0 else {
            throw NamespaceError(message: "ip \(arguments.joined(separator: " ")): \(result.stderr)")
        }
    }

    struct NamespaceError: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    deinit {
        // Deleting a namespace deletes its end of each cable, and so the pair.
        for namespace in created.reversed() { _ = try? ValiseCLI.run(path: Self.ip, ["netns", "del", namespace]) }
    }
}
