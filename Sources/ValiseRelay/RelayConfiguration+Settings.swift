import Foundation
import ValiseStore

/// Every setting valised understands, in one table: its key in the YAML file, the
/// environment variable and flag that may give it, how its text is parsed and checked,
/// and where it goes. A key that is not in the table, or a value that does not parse, is
/// an error naming the key and where it came from: a typo must never start a relay on a
/// default. A new setting is one line of `all`.
extension RelayConfiguration {
    /// Where a setting's value came from, in the order they win: a flag, the environment,
    /// the file, the default.
    public enum Source: Equatable, Sendable, CustomStringConvertible {
        case flag(String)
        case environment(String)
        case file(String)
        case defaultValue

        public var description: String {
            switch self {
            case .flag(let flag): "flag \(flag)"
            case .environment(let name): "environment \(name)"
            case .file(let path): "file \(path)"
            case .defaultValue: "default"
            }
        }
    }

    /// A configuration that cannot be used: names the key (or variable, or flag) and its source.
    public struct SettingError: Error, Equatable, Sendable, CustomStringConvertible {
        public let description: String

        public init(_ description: String) {
            self.description = description
        }
    }

    /// One setting: `parse` checks the text and stores the value; `show` prints the
    /// effective value.
    public struct Setting: Sendable {
        public let key: String
        public let flag: String?
        let parse: @Sendable (String, inout Effective) -> String?
        let show: @Sendable (Effective) -> String

        /// The environment variable: `VALISED_`, then the key with dots and camel-case
        /// boundaries as underscores, in upper case (`limits.maxConnections` →
        /// `VALISED_LIMITS_MAX_CONNECTIONS`).
        public var environmentName: String {
            var name = "VALISED"
            for component in key.split(separator: ".") {
                name += "_"
                var previous: Character?
                for character in component {
                    if let previous, previous.isLowercase, character.isUppercase { name += "_" }
                    name += character.isLetter || character.isNumber ? character.uppercased() : "_"
                    previous = character
                }
            }
            return name
        }
    }

    /// What valised runs with: the relay's configuration, the log level, and where each
    /// setting came from.
    public struct Effective: Sendable {
        public var relay: RelayConfiguration
        public var logLevel = "info"
        public internal(set) var sources: [String: Source] = [:]

        init() {
            relay = RelayConfiguration(directory: "")
        }

        /// Each setting as `key: value (source)`, in the table's order.
        public var lines: [String] {
            RelayConfiguration.settings.map { "\($0.key): \($0.show(self)) (\(sources[$0.key] ?? .defaultValue))" }
        }
    }

    /// Environment variables that start with `VALISED_` and are not settings.
    public static let otherEnvironmentVariables: Set<String> = ["VALISED_PASSPHRASE"]

    public static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    /// The table.
    public static let settings: [Setting] = [
        .text("directory", flag: "--dir", \.relay.directory) { $0.isEmpty ? "must not be empty" : nil },
        Setting(key: "listen", flag: "--listen", parse: { text, effective in
            guard let colon = text.lastIndex(of: ":"), colon != text.startIndex,
                  let port = Int(text[text.index(after: colon)...]), (0...65_535).contains(port) else { return "must be HOST:PORT" }
            effective.relay.listenHost = String(text[..<colon]).trimmingCharacters(in: ["[", "]"])
            effective.relay.listenPort = port
            return nil
        }, show: { "\($0.relay.listenHost.contains(":") ? "[\($0.relay.listenHost)]" : $0.relay.listenHost):\($0.relay.listenPort)" }),
        .text("durability", \.durabilityName) { Durability(rawValue: $0) == nil ? "must be full or os" : nil },
        .text("log.level", flag: "--log-level", \.logLevel) { logLevels.contains($0) ? nil : "must be one of \(logLevels.joined(separator: ", "))" },
        .text("links", \.linksName) { ["on", "off"].contains($0) ? nil : "must be on or off" },
        .metricsListen,

        .count("limits.maxConnections", \.relay.limits.maximumConnections),
        .count("limits.maxConnectionsPerAddress", \.relay.limits.maximumConnectionsPerAddress),
        .rate("limits.handshakesPerSecondPerAddress", \.relay.limits.handshakesPerSecondPerAddress),
        .count("limits.handshakeBurstPerAddress", \.relay.limits.handshakeBurstPerAddress),
        .rate("limits.handshakeTimeoutSeconds", \.relay.limits.handshakeTimeout),
        .rate("limits.idleTimeoutSeconds", \.relay.limits.idleTimeout),
        .rate("limits.frameTimeoutSeconds", \.relay.limits.frameTimeout),
        .count("limits.maxMessageBytes", \.relay.limits.maximumMessageBytes),
        .count("limits.maxEntriesPerFetch", \.relay.limits.maximumEntriesPerFetch),
        .count("limits.maxEnvelopeBytes", \.relay.limits.maximumEnvelopeBytes),
        .count("limits.deliveryWindow", \.relay.limits.deliveryWindow),
        .count("limits.maxPendingRequests", \.relay.limits.maximumPendingRequests),
        .count("limits.maxPendingBytes", \.relay.limits.maximumPendingBytes),
        .rate("limits.sendsPerSecondPerDevice", \.relay.limits.sendsPerSecondPerDevice),
        .count("limits.sendBurstPerDevice", \.relay.limits.sendBurstPerDevice),
        .rate("limits.oneTimePrekeysPerMinute", \.relay.limits.oneTimePrekeysPerMinute),
        .count("limits.oneTimePrekeyBurst", \.relay.limits.oneTimePrekeyBurst),
        .rate("limits.prekeyMembersPerMinute", \.relay.limits.prekeyMembersPerMinute),
        .count("limits.prekeyMemberBurst", \.relay.limits.prekeyMemberBurst, minimum: 100),
        .rate("limits.directoryPublishesPerMinute", \.relay.limits.directoryPublishesPerMinute),
        .count("limits.directoryPublishBurst", \.relay.limits.directoryPublishBurst),

        .count("queue.maxMessagesPerMailbox", \.relay.queue.limits.maximumMessagesPerMailbox),
        .count("queue.maxBytesPerMailbox", \.relay.queue.limits.maximumBytesPerMailbox),
        .count("queue.retentionSeconds", \.retentionSeconds),
        .text("queue.defaultTTL", \.defaultTTLName) { ttl($0) == nil ? "must be one of 1h, 1d, 7d, 30d" : nil },
        .text("queue.maxTTL", \.maximumTTLName) { ttl($0) == nil ? "must be one of 1h, 1d, 7d, 30d" : nil },
        .rate("queue.expirySweepSeconds", \.relay.queue.expirySweepInterval),
        .rate("queue.statisticsSeconds", \.relay.queue.statisticsInterval),
        Setting(key: "queue.maxStoreBytes", flag: nil, parse: { text, effective in
            guard let value = Int(text), value >= 1 << 20 else { return "must be a whole number of bytes, at least 1 MiB (1048576)" }
            effective.relay.queue.maximumStoreBytes = value
            return nil
        }, show: { $0.relay.queue.maximumStoreBytes.map { "\($0)" } ?? "none" }),
        .count("queue.reserveBytes", \.relay.queue.reserveBytes, minimum: 0),
        .count("queue.maxBlobBytes", \.relay.queue.maximumBlobBytes, minimum: 0),
        .count("queue.maxBlobStoreBytes", \.relay.queue.maximumBlobStoreBytes, minimum: 0),
        .count("queue.maxBlobBytesPerDevice", \.relay.queue.maximumBlobBytesPerDevice, minimum: 0),
    ] + storeSettings

    /// Settings that were renamed or removed, with what to use instead: an old file must
    /// not be refused with only "unknown setting".
    public static let retiredSettings: [String: String] = [
        "limits.prekeyFetchesPerMinute":
            "use limits.oneTimePrekeysPerMinute (one-time prekeys one device may take) and limits.prekeyMembersPerMinute (members whose bundles it may fetch)",
    ]

    static func ttl(_ name: String) -> TTLClass? { TTLClass.allCases.first { $0.name == name } }

    /// The configuration from the file's values (`key → text`, keys dotted), the
    /// environment and the flags (`key → text`), checked against the table: unknown keys,
    /// unknown `VALISED_` variables and values that do not parse are errors.
    public static func resolve(
        file: [String: String], filePath: String?, environment: [String: String], flags: [String: String]
    ) throws(SettingError) -> Effective {
        let known = Dictionary(uniqueKeysWithValues: settings.map { ($0.key, $0) })
        for (key, hint) in retiredSettings.sorted(by: { $0.key < $1.key }) {
            let variable = Setting(key: key, flag: nil, parse: { _, _ in nil }, show: { _ in "" }).environmentName
            if file[key] != nil || environment[variable] != nil || flags[key] != nil {
                let source = file[key] != nil ? "in \(filePath ?? "the configuration file")" : environment[variable] != nil ? "in the environment (\(variable))" : "as a flag"
                throw SettingError("the setting '\(key)' \(source) is gone: \(hint); see config/valised.yaml")
            }
        }
        if let unknown = file.keys.sorted().first(where: { known[$0] == nil }) {
            throw SettingError("unknown setting '\(unknown)' in \(filePath ?? "the configuration file") (config/valised.yaml lists every setting)")
        }
        let variables = Dictionary(uniqueKeysWithValues: settings.map { ($0.environmentName, $0) })
        if let unknown = environment.keys.sorted().first(where: {
            $0.hasPrefix("VALISED_") && variables[$0] == nil && !otherEnvironmentVariables.contains($0)
        }) {
            throw SettingError("unknown variable \(unknown) in the environment (not a setting of valised)")
        }
        var effective = Effective()
        for setting in settings {
            let given: (text: String, source: Source)?
            if let text = flags[setting.key] {
                given = (text, .flag(setting.flag ?? setting.key))
            } else if let text = environment[setting.environmentName] {
                given = (text, .environment(setting.environmentName))
            } else if let text = file[setting.key] {
                given = (text, .file(filePath ?? "the configuration file"))
            } else {
                given = nil
            }
            guard let given else { continue }
            if let problem = setting.parse(given.text, &effective) {
                throw SettingError("\(setting.key) \(problem), not '\(given.text)' (\(given.source))")
            }
            effective.sources[setting.key] = given.source
        }
        guard effective.sources["directory"] != nil else {
            throw SettingError("no relay directory: give --dir DIR, VALISED_DIRECTORY, or 'directory' in the file")
        }
        if let metrics = effective.relay.metricsListen, metrics.port != 0, metrics.port == effective.relay.listenPort,
           metrics.host == effective.relay.listenHost {
            throw SettingError("metrics.listen must not be the relay's own address (listen: \(metrics))")
        }
        if effective.relay.store.kind == .postgres, effective.relay.store.postgresHosts.isEmpty {
            throw SettingError("store.kind is postgres but store.postgres.hosts names no database server")
        }
        guard effective.relay.queue.defaultTTL <= effective.relay.queue.maximumTTL else {
            throw SettingError("queue.defaultTTL must not be longer than queue.maxTTL")
        }
        return effective
    }
}

extension RelayConfiguration.Setting {
    /// A whole number of at least `minimum` (1: counts and sizes are positive).
    static func count(
        _ key: String, _ path: any WritableKeyPath<RelayConfiguration.Effective, Int> & Sendable, minimum: Int = 1
    ) -> Self {
        Self(key: key, flag: nil, parse: { text, effective in
            guard let value = Int(text), value >= minimum else {
                return minimum == 0 ? "must be a whole number, 0 or more" : "must be a whole number, at least \(minimum)"
            }
            effective[keyPath: path] = value
            return nil
        }, show: { "\($0[keyPath: path])" })
    }

    /// A positive number (rates, seconds).
    static func rate(_ key: String, _ path: any WritableKeyPath<RelayConfiguration.Effective, Double> & Sendable) -> Self {
        Self(key: key, flag: nil, parse: { text, effective in
            guard let value = Double(text), value.isFinite, value > 0 else { return "must be a positive number" }
            effective[keyPath: path] = value
            return nil
        }, show: { value in
            let number = value[keyPath: path]
            return number == number.rounded() && abs(number) < 1e15 ? "\(Int(number))" : "\(number)"
        })
    }

    /// Text that `problem` accepts (nil) or explains.
    static func text(
        _ key: String, flag: String? = nil, _ path: any WritableKeyPath<RelayConfiguration.Effective, String> & Sendable,
        _ problem: @escaping @Sendable (String) -> String?
    ) -> Self {
        Self(key: key, flag: flag, parse: { text, effective in
            if let problem = problem(text) { return problem }
            effective[keyPath: path] = text
            return nil
        }, show: { $0[keyPath: path] })
    }
}

/// Views of settings stored in another form than their text.
extension RelayConfiguration.Effective {
    var durabilityName: String {
        get { relay.queue.durability.rawValue }
        set { relay.queue.durability = Durability(rawValue: newValue) ?? relay.queue.durability }
    }

    var linksName: String {
        get { relay.linksEnabled ? "on" : "off" }
        set { relay.linksEnabled = newValue == "on" }
    }

    var defaultTTLName: String {
        get { relay.queue.defaultTTL.name }
        set { relay.queue.defaultTTL = RelayConfiguration.ttl(newValue) ?? relay.queue.defaultTTL }
    }

    var maximumTTLName: String {
        get { relay.queue.maximumTTL.name }
        set { relay.queue.maximumTTL = RelayConfiguration.ttl(newValue) ?? relay.queue.maximumTTL }
    }

    var retentionSeconds: Int {
        get { Int(relay.queue.limits.retentionSeconds) }
        set { relay.queue.limits.retentionSeconds = UInt64(newValue) }
    }
}
