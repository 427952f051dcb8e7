public import ValiseCrypto

/// Where a relay's queue lives in PostgreSQL (valised.yaml `store.postgres`). Parsed and
/// checked in every build, so that a valised built without the Postgres trait can say what
/// it would need rather than that the file is wrong.
public struct PostgresStoreConfiguration: Sendable {
    /// A database server, tried in the order given; the primary is the one not in recovery.
    public struct Host: Sendable, Equatable, CustomStringConvertible {
        public var name: String
        public var port: Int

        public init(name: String, port: Int = 5432) {
            self.name = name
            self.port = port
        }

        /// "db1.example:5432", "db1.example" (port 5432), "[::1]:5432".
        public init?(_ text: String) {
            var name = Substring(text)
            var port = 5432
            if name.hasPrefix("[") {
                guard let close = name.firstIndex(of: "]") else { return nil }
                let rest = name[name.index(after: close)...]
                name = name[name.index(after: name.startIndex)..<close]
                if !rest.isEmpty {
                    guard rest.hasPrefix(":"), let value = Int(rest.dropFirst()) else { return nil }
                    port = value
                }
            } else if let colon = name.lastIndex(of: ":") {
                guard let value = Int(name[name.index(after: colon)...]) else { return nil }
                port = value
                name = name[..<colon]
            }
            guard !name.isEmpty, name.count <= 253, (1...65535).contains(port),
                  name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || ".-:_".contains($0)) })
            else { return nil }
            self.name = String(name)
            self.port = port
        }

        /// Loopback: the only place where an unencrypted connection is allowed.
        public var isLoopback: Bool {
            name == "localhost" || name == "::1" || name.hasPrefix("127.")
        }

        public var description: String { name.contains(":") ? "[\(name)]:\(port)" : "\(name):\(port)" }
    }

    /// How the connection to the database is protected.
    public enum TLSMode: String, Sendable, CaseIterable {
        /// No TLS: loopback only.
        case disable
        /// Encrypted, the server's certificate not checked (libpq's `require`).
        case require
        /// Encrypted, the certificate checked against the trusted roots (or `caFile`) and the
        /// host name (libpq's `verify-full`). The default.
        case verifyFull = "verify-full"
    }

    public var hosts: [Host]
    public var database: String
    public var user: String
    /// The password, read from `passwordFile`, kept in guarded memory until a connection is
    /// made (postgres-nio takes it as a String for the handshake).
    public var password: SecretBytes?
    public var tls: TLSMode
    /// PEM file of the certificate authorities to trust for verify-full (nil: the system's).
    public var caFile: String?
    /// Connections in the pool (the LISTEN connection is one more, of its own).
    public var pool: Int
    /// The schema that holds the tables (tests give each store its own).
    public var schema: String
    /// How long one connection attempt to one host may take.
    public var connectTimeoutSeconds: Int

    public init(
        hosts: [Host], database: String, user: String, password: SecretBytes? = nil, tls: TLSMode = .verifyFull,
        caFile: String? = nil, pool: Int = 8, schema: String = "valise", connectTimeoutSeconds: Int = 5
    ) {
        self.hosts = hosts
        self.database = database
        self.user = user
        self.password = password
        self.tls = tls
        self.caFile = caFile
        self.pool = pool
        self.schema = schema
        self.connectTimeoutSeconds = connectTimeoutSeconds
    }

    /// What is wrong with the settings, in words, or nil.
    public var problem: String? {
        if hosts.isEmpty { return "store.postgres.hosts names no database server" }
        if hosts.count > 16 { return "store.postgres.hosts names more than 16 servers" }
        if database.isEmpty || database.utf8.count > 63 { return "store.postgres.database must be 1 to 63 bytes" }
        if user.isEmpty || user.utf8.count > 63 { return "store.postgres.user must be 1 to 63 bytes" }
        if !(1...256).contains(pool) { return "store.postgres.pool must be 1 to 256" }
        // 48 at most: its announcement channel, valise_queue_<schema>, must fit PostgreSQL's 63.
        if !Self.isPlainIdentifier(schema) || schema.utf8.count > 48 {
            return "store.postgres.schema must be 1 to 48 lower-case letters, digits or _, starting with a letter"
        }
        if tls == .disable, let host = hosts.first(where: { !$0.isLoopback }) {
            return "store.postgres.tls is disable but \(host) is not a loopback address: use require or verify-full"
        }
        return nil
    }

    /// A name that can go into SQL as it is (schema names cannot be bound as parameters).
    public static func isPlainIdentifier(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, ("a"..."z").contains(first), text.utf8.count <= 63 else { return false }
        return text.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
    }
}

/// Whether this build of valised can use PostgreSQL (the package trait `Postgres`).
public enum PostgresSupport {
    #if Postgres
    public static let isBuilt = true
    #else
    public static let isBuilt = false
    #endif

    /// What valised says when the configuration asks for PostgreSQL and the build has none.
    public static let notBuiltMessage = """
        store.kind is postgres, but this valised was built without PostgreSQL support: \
        build it with `swift build -c release --traits Postgres` (or set store.kind: sqlite)
        """
}
