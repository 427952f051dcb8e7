import Configuration
import Foundation
import SystemPackage
import Logging
import ValiseRelay
import ValiseStore

/// The relay's settings, read with swift-configuration: flags first, then `VALISED_*`
/// environment variables, then the YAML file, then the defaults of `RelayConfiguration`.
struct RelaySettings {
    let relay: RelayConfiguration
    let logLevel: Logger.Level

    struct Invalid: Error, CustomStringConvertible {
        let description: String
    }

    static func load(flags: [String: String], configFile: String?) async throws -> RelaySettings {
        var providers: [any ConfigProvider] = [
            InMemoryProvider(name: "flags", values: Dictionary(uniqueKeysWithValues: flags.map { (AbsoluteConfigKey(stringLiteral: $0.key), ConfigValue(.string($0.value), isSecret: false)) })),
            KeyMappingProvider(upstream: EnvironmentVariablesProvider()) { $0.prepending(["valised"]) },
        ]
        if let configFile {
            providers.append(try await FileProvider<YAMLSnapshot>(filePath: .init(configFile)))
        }
        let config = ConfigReader(providers: providers)

        guard let directory = config.string(forKey: "directory") else {
            throw Invalid(description: "no relay directory: give --dir DIR, VALISED_DIRECTORY, or 'directory' in the file")
        }
        var relay = RelayConfiguration(directory: directory)
        let listen = config.string(forKey: "listen", default: "127.0.0.1:7400")
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
              (0...65_535).contains(port), colon != listen.startIndex else {
            throw Invalid(description: "listen must be HOST:PORT, not \(listen)")
        }
        relay.listenHost = String(listen[..<colon]).trimmingCharacters(in: ["[", "]"])
        relay.listenPort = port

        let defaults = RelayConfiguration.Limits()
        relay.limits.maximumConnections = try positive(config, "limits.maxConnections", defaults.maximumConnections)
        relay.limits.maximumConnectionsPerAddress = try positive(config, "limits.maxConnectionsPerAddress", defaults.maximumConnectionsPerAddress)
        relay.limits.handshakesPerSecondPerAddress = try positive(config, "limits.handshakesPerSecondPerAddress", defaults.handshakesPerSecondPerAddress)
        relay.limits.handshakeBurstPerAddress = try positive(config, "limits.handshakeBurstPerAddress", defaults.handshakeBurstPerAddress)
        relay.limits.handshakeTimeout = try positive(config, "limits.handshakeTimeoutSeconds", defaults.handshakeTimeout)
        relay.limits.idleTimeout = try positive(config, "limits.idleTimeoutSeconds", defaults.idleTimeout)
        relay.limits.frameTimeout = try positive(config, "limits.frameTimeoutSeconds", defaults.frameTimeout)
        relay.limits.maximumMessageBytes = try positive(config, "limits.maxMessageBytes", defaults.maximumMessageBytes)
        relay.limits.maximumEntriesPerFetch = try positive(config, "limits.maxEntriesPerFetch", defaults.maximumEntriesPerFetch)
        relay.limits.maximumEnvelopeBytes = try positive(config, "limits.maxEnvelopeBytes", defaults.maximumEnvelopeBytes)
        relay.limits.deliveryWindow = try positive(config, "limits.deliveryWindow", defaults.deliveryWindow)
        relay.limits.maximumPendingRequests = try positive(config, "limits.maxPendingRequests", defaults.maximumPendingRequests)
        relay.limits.prekeyFetchesPerMinute = try positive(config, "limits.prekeyFetchesPerMinute", defaults.prekeyFetchesPerMinute)
        relay.limits.maximumPendingBytes = try positive(config, "limits.maxPendingBytes", defaults.maximumPendingBytes)
        relay.limits.sendsPerSecondPerDevice = try positive(config, "limits.sendsPerSecondPerDevice", defaults.sendsPerSecondPerDevice)
        relay.limits.sendBurstPerDevice = try positive(config, "limits.sendBurstPerDevice", defaults.sendBurstPerDevice)
        relay.limits.directoryPublishesPerMinute = try positive(config, "limits.directoryPublishesPerMinute", defaults.directoryPublishesPerMinute)
        relay.limits.directoryPublishBurst = try positive(config, "limits.directoryPublishBurst", defaults.directoryPublishBurst)

        let queue = RelayConfiguration.Queue()
        relay.queue.limits.maximumMessagesPerMailbox = try positive(config, "queue.maxMessagesPerMailbox", queue.limits.maximumMessagesPerMailbox)
        relay.queue.limits.maximumBytesPerMailbox = try positive(config, "queue.maxBytesPerMailbox", queue.limits.maximumBytesPerMailbox)
        relay.queue.limits.retentionSeconds = UInt64(try positive(config, "queue.retentionSeconds", Int(queue.limits.retentionSeconds)))
        relay.queue.defaultTTL = try ttl(config, "queue.defaultTTL", queue.defaultTTL)
        relay.queue.maximumTTL = try ttl(config, "queue.maxTTL", queue.maximumTTL)
        guard relay.queue.defaultTTL <= relay.queue.maximumTTL else {
            throw Invalid(description: "queue.defaultTTL must not be longer than queue.maxTTL")
        }
        relay.queue.expirySweepInterval = try positive(config, "queue.expirySweepSeconds", queue.expirySweepInterval)
        relay.queue.statisticsInterval = try positive(config, "queue.statisticsSeconds", queue.statisticsInterval)
        if let cap = config.int(forKey: "queue.maxStoreBytes") {
            guard cap >= 1 << 20 else { throw Invalid(description: "queue.maxStoreBytes must be at least 1 MiB") }
            relay.queue.maximumStoreBytes = cap
        }
        if let reserve = config.int(forKey: "queue.reserveBytes") {
            guard reserve >= 0 else { throw Invalid(description: "queue.reserveBytes must not be negative") }
            relay.queue.reserveBytes = reserve
        }

        let durability = config.string(forKey: "durability", default: Durability.full.rawValue)
        guard let chosen = Durability(rawValue: durability) else {
            throw Invalid(description: "durability must be full or os, not \(durability)")
        }
        relay.queue.durability = chosen

        let levelName = config.string(forKey: "log.level", default: "info")
        guard let level = Logger.Level(rawValue: levelName) else {
            throw Invalid(description: "log.level must be one of trace, debug, info, notice, warning, error, critical")
        }
        return RelaySettings(relay: relay, logLevel: level)
    }

    private static func ttl(_ config: ConfigReader, _ key: String, _ fallback: TTLClass) throws -> TTLClass {
        let name = config.string(forKey: ConfigKey(key), default: fallback.name)
        guard let ttl = TTLClass.allCases.first(where: { $0.name == name }) else {
            throw Invalid(description: "\(key) must be one of 1h, 1d, 7d, 30d")
        }
        return ttl
    }

    private static func positive(_ config: ConfigReader, _ key: String, _ fallback: Int) throws -> Int {
        let value = config.int(forKey: ConfigKey(key), default: fallback)
        guard value > 0 else { throw Invalid(description: "\(key) must be a positive number") }
        return value
    }

    private static func positive(_ config: ConfigReader, _ key: String, _ fallback: Double) throws -> Double {
        let value = config.double(forKey: ConfigKey(key), default: fallback)
        guard value > 0 else { throw Invalid(description: "\(key) must be a positive number") }
        return value
    }
}
