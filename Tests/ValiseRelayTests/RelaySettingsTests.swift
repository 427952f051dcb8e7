import Foundation
import Testing
@testable import ValiseRelay

/// The one table of settings: every source is read strictly, and each value remembers where
/// it came from (issue 15: `listn:`, `maxConnections: ten` and
/// `VALISED_LIMITS_MAX_CONNECTIONS=lots` once started a relay on defaults).
@Suite("Relay configuration: strict settings with sources")
struct RelaySettingsTests {
    static let file = "/etc/valised/valised.yaml"

    static func resolve(
        file: [String: String] = ["directory": "/var/lib/valised"], environment: [String: String] = [:], flags: [String: String] = [:]
    ) throws(RelayConfiguration.SettingError) -> RelayConfiguration.Effective {
        try RelayConfiguration.resolve(file: file, filePath: Self.file, environment: environment, flags: flags)
    }

    static func error(_ body: () throws(RelayConfiguration.SettingError) -> RelayConfiguration.Effective) -> String {
        do {
            _ = try body()
            return "no error"
        } catch {
            return error.description
        }
    }

    @Test("the issue's three examples are refused, naming the key and its source")
    func issueExamples() {
        let typo = Self.error { () throws(RelayConfiguration.SettingError) in try Self.resolve(file: ["directory": "/d", "listn": "0.0.0.0:7400"]) }
        #expect(typo.contains("'listn'") && typo.contains(Self.file), "\(typo)")
        let word = Self.error { () throws(RelayConfiguration.SettingError) in try Self.resolve(file: ["directory": "/d", "limits.maxConnections": "ten"]) }
        #expect(word.contains("limits.maxConnections") && word.contains("'ten'") && word.contains("file \(Self.file)"), "\(word)")
        let variable = Self.error { () throws(RelayConfiguration.SettingError) in
            try Self.resolve(environment: ["VALISED_LIMITS_MAX_CONNECTIONS": "lots"])
        }
        #expect(variable.contains("'lots'") && variable.contains("environment VALISED_LIMITS_MAX_CONNECTIONS"), "\(variable)")
    }

    @Test("unknown VALISED_ variables are refused; the passphrase's and other programs' variables are not")
    func environmentNames() throws {
        let unknown = Self.error { () throws(RelayConfiguration.SettingError) in try Self.resolve(environment: ["VALISED_LISTN": "x"]) }
        #expect(unknown.contains("VALISED_LISTN") && unknown.contains("environment"), "\(unknown)")
        _ = try Self.resolve(environment: ["VALISED_PASSPHRASE": "secret", "PATH": "/bin", "VALISE_HOME": "/h"])
        let names = Set(RelayConfiguration.settings.map(\.environmentName))
        #expect(names.isSuperset(of: [
            "VALISED_DIRECTORY", "VALISED_LISTEN", "VALISED_LOG_LEVEL", "VALISED_LIMITS_MAX_CONNECTIONS_PER_ADDRESS",
            "VALISED_LIMITS_HANDSHAKES_PER_SECOND_PER_ADDRESS", "VALISED_QUEUE_DEFAULT_TTL", "VALISED_QUEUE_MAX_TTL",
            "VALISED_QUEUE_MAX_STORE_BYTES", "VALISED_DURABILITY",
        ]))
        #expect(names.count == RelayConfiguration.settings.count, "two settings share an environment variable")
    }

    @Test("flags win over the environment, which wins over the file; each value says where it came from")
    func sources() throws {
        let effective = try Self.resolve(
            file: ["directory": "/d", "limits.maxConnections": "10", "limits.deliveryWindow": "8", "listen": "127.0.0.1:1"],
            environment: ["VALISED_LIMITS_DELIVERY_WINDOW": "32", "VALISED_LISTEN": "127.0.0.1:2"], flags: ["listen": "[::1]:0"])
        #expect(effective.relay.limits.maximumConnections == 10)
        #expect(effective.relay.limits.deliveryWindow == 32)
        #expect(effective.relay.listenHost == "::1" && effective.relay.listenPort == 0)
        #expect(effective.lines.contains("limits.maxConnections: 10 (file \(Self.file))"))
        #expect(effective.lines.contains("limits.deliveryWindow: 32 (environment VALISED_LIMITS_DELIVERY_WINDOW)"))
        #expect(effective.lines.contains("listen: [::1]:0 (flag --listen)"))
        #expect(effective.lines.contains("limits.maxConnectionsPerAddress: 64 (default)"))
        #expect(effective.lines.count == RelayConfiguration.settings.count)
    }

    @Test("values that do not parse or are out of range are refused, for every kind of setting", arguments: [
        ("listen", "127.0.0.1"), ("listen", "host:70000"), ("limits.maxConnections", "0"), ("limits.maxConnections", "1e4"),
        ("limits.handshakesPerSecondPerAddress", "-1"), ("limits.handshakesPerSecondPerAddress", "nan"), ("queue.defaultTTL", "2d"),
        ("durability", "fast"), ("log.level", "loud"), ("queue.maxStoreBytes", "1000"), ("queue.reserveBytes", "-1"), ("directory", ""),
    ])
    func badValues(key: String, value: String) {
        var file = ["directory": "/d"]
        file[key] = value
        let message = Self.error { () throws(RelayConfiguration.SettingError) in try Self.resolve(file: file) }
        #expect(message.contains(key) && message.contains("'\(value)'") && message.contains(Self.file), "\(message)")
    }

    @Test("defaults need only a directory, and are RelayConfiguration's")
    func defaults() throws {
        let effective = try Self.resolve()
        var expected = RelayConfiguration(directory: "/var/lib/valised")
        expected.listenHost = "127.0.0.1"
        #expect(effective.relay == expected)
        #expect(effective.logLevel == "info")
        let none = Self.error { () throws(RelayConfiguration.SettingError) in try Self.resolve(file: [:]) }
        #expect(none.contains("no relay directory"), "\(none)")
        let ttl = Self.error { () throws(RelayConfiguration.SettingError) in
            try Self.resolve(file: ["directory": "/d", "queue.defaultTTL": "30d", "queue.maxTTL": "1d"])
        }
        #expect(ttl.contains("queue.defaultTTL"), "\(ttl)")
    }
}
