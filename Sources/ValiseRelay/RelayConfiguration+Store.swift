import Foundation

/// Where the relay keeps its queue (`store.*`): SQLite in the relay's directory (the
/// default), or PostgreSQL shared by several valised nodes of one relay (issue 19). The
/// PostgreSQL settings stay text here: ValiseRelay does not know the PostgreSQL module, and
/// valised turns them into a `PostgresStoreConfiguration`, whose check gives the words for
/// a bad one.
extension RelayConfiguration {
    public struct Store: Sendable, Equatable {
        public enum Kind: String, Sendable, CaseIterable {
            case sqlite
            case postgres
        }

        public var kind = Kind.sqlite
        /// `HOST[:PORT]` of each database server, tried in order (the primary is found).
        public var postgresHosts: [String] = []
        public var postgresDatabase = "valise"
        public var postgresUser = "valised"
        /// The file holding the database password (owner-only, like the relay's key file).
        public var postgresPasswordFile: String?
        /// disable (loopback only), require or verify-full.
        public var postgresTLS = "verify-full"
        /// PEM certificate authorities for verify-full (nil: the system's roots).
        public var postgresCAFile: String?
        public var postgresPool = 8
        /// The schema holding the tables (nodes of one relay share it).
        public var postgresSchema = "valise"

        public init() {}
    }

    /// Settings whose file value may be a YAML list (joined with commas, as the
    /// environment variable gives them).
    public static let listSettings: Set<String> = ["store.postgres.hosts"]

    static let storeSettings: [Setting] = [
        .text("store.kind", \.storeKindName) { Store.Kind(rawValue: $0) == nil ? "must be sqlite or postgres" : nil },
        Setting(key: "store.postgres.hosts", flag: nil, parse: { text, effective in
            let hosts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard !hosts.isEmpty, hosts.count <= 16, hosts.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 300 }) else {
                return "must list 1 to 16 servers as HOST or HOST:PORT"
            }
            effective.relay.store.postgresHosts = hosts
            return nil
        }, show: { $0.relay.store.postgresHosts.isEmpty ? "none" : $0.relay.store.postgresHosts.joined(separator: ",") }),
        .text("store.postgres.database", \.relay.store.postgresDatabase) { (1...63).contains($0.utf8.count) ? nil : "must be 1 to 63 bytes" },
        .text("store.postgres.user", \.relay.store.postgresUser) { (1...63).contains($0.utf8.count) ? nil : "must be 1 to 63 bytes" },
        .optionalPath("store.postgres.passwordFile", \.relay.store.postgresPasswordFile),
        .text("store.postgres.tls", \.relay.store.postgresTLS) {
            ["disable", "require", "verify-full"].contains($0) ? nil : "must be disable, require or verify-full"
        },
        .optionalPath("store.postgres.caFile", \.relay.store.postgresCAFile),
        .count("store.postgres.pool", \.relay.store.postgresPool),
        .text("store.postgres.schema", \.relay.store.postgresSchema) { schema in
            schema.utf8.count <= 48 && schema.first.map { ("a"..."z").contains($0) } == true
                && schema.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
                ? nil : "must be 1 to 48 lower-case letters, digits or _, starting with a letter"
        },
    ]
}

extension RelayConfiguration.Setting {
    /// A path that may be absent (none by default).
    static func optionalPath(_ key: String, _ path: any WritableKeyPath<RelayConfiguration.Effective, String?> & Sendable) -> Self {
        Self(key: key, flag: nil, parse: { text, effective in
            guard !text.isEmpty, !text.utf8.contains(0) else { return "must be a file's path" }
            effective[keyPath: path] = text
            return nil
        }, show: { $0[keyPath: path] ?? "none" })
    }
}

extension RelayConfiguration.Effective {
    var storeKindName: String {
        get { relay.store.kind.rawValue }
        set { relay.store.kind = RelayConfiguration.Store.Kind(rawValue: newValue) ?? relay.store.kind }
    }
}
