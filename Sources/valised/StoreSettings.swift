import ValiseClient
import ValiseCrypto
import ValisePostgres
import ValiseRelay
import ValiseStore

/// `store.postgres.*` as the PostgreSQL module takes it: the hosts parsed, the TLS mode, and
/// the password read from its file into guarded memory.
enum StoreSettings {
    /// A password file larger than this is not one.
    static let maximumPasswordFileBytes = 4096

    /// The PostgreSQL configuration, or nil for SQLite. Without `readPassword` (for `valised
    /// check`, which opens no secret) the file is named but not read.
    static func postgres(_ store: RelayConfiguration.Store, readPassword: Bool) throws(RelaySettings.Invalid) -> PostgresStoreConfiguration? {
        guard store.kind == .postgres else { return nil }
        guard PostgresSupport.isBuilt else { throw RelaySettings.Invalid(description: PostgresSupport.notBuiltMessage) }
        var hosts: [PostgresStoreConfiguration.Host] = []
        for text in store.postgresHosts {
            guard let host = PostgresStoreConfiguration.Host(text) else {
                throw RelaySettings.Invalid(description: "store.postgres.hosts: '\(text)' is not HOST or HOST:PORT")
            }
            hosts.append(host)
        }
        guard let tls = PostgresStoreConfiguration.TLSMode(rawValue: store.postgresTLS) else {
            throw RelaySettings.Invalid(description: "store.postgres.tls must be disable, require or verify-full")
        }
        var configuration = PostgresStoreConfiguration(
            hosts: hosts, database: store.postgresDatabase, user: store.postgresUser, tls: tls, caFile: store.postgresCAFile,
            pool: store.postgresPool, schema: store.postgresSchema)
        if let problem = configuration.problem { throw RelaySettings.Invalid(description: problem) }
        if let file = store.postgresPasswordFile, readPassword {
            let password: SecretBytes
            do throws(FileError) {
                // Owner-only and bounded, as the relay's key and passphrase files; the first
                // line, so that the file's trailing newline is not part of the password.
                password = PassphraseReader.firstLine(of: try SecureFile.readSecret(file, maximumByteCount: maximumPasswordFileBytes))
            } catch {
                throw RelaySettings.Invalid(description: "store.postgres.passwordFile: \(error.message)")
            }
            guard password.count > 0 else { throw RelaySettings.Invalid(description: "store.postgres.passwordFile \(file) is empty") }
            configuration.password = password
        }
        return configuration
    }
}
