import Foundation
import Testing
@testable import ValiseRelay

/// `store.*` in the table of settings (issue 19): SQLite by default, PostgreSQL's keys read
/// from the file or the environment, checked like every other setting.
@Suite("Relay configuration: the store's settings")
struct StoreSettingsTests {
    static func resolve(
        _ file: [String: String], environment: [String: String] = [:]
    ) throws(RelayConfiguration.SettingError) -> RelayConfiguration.Effective {
        try RelayConfiguration.resolve(
            file: file.merging(["directory": "/var/lib/valised"]) { given, _ in given }, filePath: RelaySettingsTests.file,
            environment: environment, flags: [:])
    }

    @Test("the default is SQLite; the PostgreSQL keys have the defaults the issue shows")
    func defaults() throws {
        let store = try Self.resolve([:]).relay.store
        #expect(store.kind == .sqlite)
        #expect(store.postgresHosts.isEmpty && store.postgresPasswordFile == nil && store.postgresCAFile == nil)
        #expect(store.postgresDatabase == "valise" && store.postgresUser == "valised" && store.postgresTLS == "verify-full")
        #expect(store.postgresPool == 8 && store.postgresSchema == "valise")
    }

    @Test("every key from the file, hosts as the file reader joins a list; the environment wins")
    func postgresKeys() throws {
        let file = [
            "store.kind": "postgres", "store.postgres.hosts": "db1.example:5432,db2.example", "store.postgres.database": "hq",
            "store.postgres.user": "relay", "store.postgres.passwordFile": "/etc/valised/pg.password", "store.postgres.tls": "require",
            "store.postgres.caFile": "/etc/valised/ca.pem", "store.postgres.pool": "16", "store.postgres.schema": "valise_hq",
        ]
        let effective = try Self.resolve(file)
        let store = effective.relay.store
        #expect(store.kind == .postgres && store.postgresHosts == ["db1.example:5432", "db2.example"])
        #expect(store.postgresDatabase == "hq" && store.postgresUser == "relay" && store.postgresTLS == "require")
        #expect(store.postgresPasswordFile == "/etc/valised/pg.password" && store.postgresCAFile == "/etc/valised/ca.pem")
        #expect(store.postgresPool == 16 && store.postgresSchema == "valise_hq")
        #expect(effective.lines.contains("store.postgres.hosts: db1.example:5432,db2.example (file \(RelaySettingsTests.file))"))
        let overridden = try Self.resolve(file, environment: ["VALISED_STORE_POSTGRES_HOSTS": "10.0.0.5:6432", "VALISED_STORE_POSTGRES_POOL": "4"])
        #expect(overridden.relay.store.postgresHosts == ["10.0.0.5:6432"] && overridden.relay.store.postgresPool == 4)
    }

    @Test("bad values are refused naming the key", arguments: [
        ("store.kind", "mysql"), ("store.postgres.tls", "prefer"), ("store.postgres.pool", "0"), ("store.postgres.hosts", "db1,,db2"),
        ("store.postgres.schema", "Valise"), ("store.postgres.schema", "1st"), ("store.postgres.database", ""),
    ])
    func refused(key: String, value: String) {
        let message: String
        do {
            _ = try Self.resolve([key: value])
            message = "no error"
        } catch {
            message = error.description
        }
        #expect(message.contains(key) && message.contains("'\(value)'"), "\(message)")
    }

    @Test("store.kind postgres without hosts is refused")
    func postgresNeedsHosts() {
        let message: String
        do {
            _ = try Self.resolve(["store.kind": "postgres"])
            message = "no error"
        } catch {
            message = error.description
        }
        #expect(message.contains("store.postgres.hosts"), "\(message)")
    }
}
