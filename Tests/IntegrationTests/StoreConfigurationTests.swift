import Foundation
import Testing
import ValiseTestSupport

/// `store.kind` and `store.postgres.*` through the real valised (issue 19): the YAML list of
/// hosts, the refusal by a build without PostgreSQL, the password file's checks.
@Suite("valised: the store's configuration (real valised)")
struct StoreConfigurationTests {
    static let postgresFile = """
        store:
          kind: postgres
          postgres:
            hosts: ["db1.example:5432", "db2.example"]
            database: valise
            user: valised
            tls: verify-full
            pool: 8

        """

    static func write(_ text: String, in directory: TemporaryDirectory) throws -> String {
        let path = directory.file("valised.yaml")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    #if Postgres
    @Test("valised check accepts store.kind postgres with a YAML list of hosts, and shows them")
    func checkShowsHosts() throws {
        let directory = TemporaryDirectory()
        let path = try Self.write("directory: \(directory.file("relay"))\n" + Self.postgresFile, in: directory)
        let result = try ValiseCLI.run(["check", "--config", path], program: "valised")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("store.kind: postgres (file \(path))"), "\(result.stdout)")
        #expect(result.stdout.contains("store.postgres.hosts: db1.example:5432,db2.example (file \(path))"), "\(result.stdout)")
    }

    @Test("tls disable towards a host that is not loopback is refused by check, in the configuration's words")
    func tlsDisableRefused() throws {
        let directory = TemporaryDirectory()
        let path = try Self.write(
            "directory: \(directory.file("relay"))\n" + Self.postgresFile.replacingOccurrences(of: "verify-full", with: "disable"), in: directory)
        let result = try ValiseCLI.run(["check", "--config", path], program: "valised")
        #expect(result.status == 1)
        #expect(result.stderr.contains("store.postgres.tls is disable but db1.example:5432 is not a loopback address"), "\(result.stderr)")
    }

    @Test("a password file readable by others stops the start before any connection, naming the setting")
    func loosePasswordFile() throws {
        let world = try RelayWorld(members: [])
        #expect(world.relay.stop() == 0)
        let password = world.path("pg.password")
        try "secret-password\n".write(toFile: password, atomically: true, encoding: .utf8)
        chmod(password, 0o644)
        let path = try Self.write(
            "directory: \(world.path("relay"))\n" + Self.postgresFile + "    passwordFile: \(password)\n", in: world.directory)
        let result = try ValiseCLI.run(["run", "--config", path, "--listen", "127.0.0.1:0"], program: "valised", timeout: 15)
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("store.postgres.passwordFile"), "\(result.stderr)")
        #expect(!result.stderr.contains("secret-password") && !result.stdout.contains("listening"))
    }
    #else
    @Test("a valised built without the Postgres trait refuses store.kind postgres, saying how to build it")
    func notBuilt() throws {
        let directory = TemporaryDirectory()
        let path = try Self.write("directory: \(directory.file("relay"))\n" + Self.postgresFile, in: directory)
        for command in [["check", "--config", path], ["run", "--config", path, "--listen", "127.0.0.1:0"]] {
            let result = try ValiseCLI.run(command, program: "valised", timeout: 15)
            #expect(result.status == 1, "valised \(command[0]): \(result.stderr)")
            #expect(result.stderr.contains("built without PostgreSQL support") && result.stderr.contains("--traits Postgres"), "\(result.stderr)")
        }
    }
    #endif
}
