import Foundation
import Testing
import ValiseClient
import ValiseCrypto
import ValiseTestSupport

/// What the integration tests' organisations share: a temporary directory holding the
/// admin's organisation (`org`) and one home per member, all run through the real `valise`
/// with one test passphrase.
protocol OrganisationWorld: AnyObject {
    var directory: TemporaryDirectory { get }
}

extension OrganisationWorld {
    var passphrase: String { "correct horse battery staple" }
    var insecure: [String] { ["--kdf-profile", "insecure-test"] }

    func path(_ name: String) -> String { directory.file(name) }
    var org: [String] { ["--org", path("org")] }

    @discardableResult
    func valise(_ arguments: [String], expect status: Int32 = 0, sourceLocation: SourceLocation = #_sourceLocation) throws -> ValiseCLI.Result {
        let result = try ValiseCLI.run(arguments, environment: ["VALISE_PASSPHRASE": passphrase])
        #expect(result.status == status, "valise \(arguments.joined(separator: " ")): \(result.stderr)", sourceLocation: sourceLocation)
        return result
    }

    func json(_ result: ValiseCLI.Result) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    }

    func fingerprint(_ member: String) throws -> String {
        try json(valise(["whoami", "--home", path(member), "--json"]))["fingerprint"] as? String ?? ""
    }

    /// A one-admin organisation with one relay, hq, whose keys `valised init` made in
    /// `relay/` (the relay is not started).
    func makeOrganisationWithRelay() throws {
        try valise(["admin", "init", "--name", "Ministry", "--admin-name", "registrar"] + org + insecure)
        try valise(["admin", "bundle", "--out", path("genesis.bundle")] + org)
        let initRelay = try ValiseCLI.run(
            ["init", "--dir", path("relay"), "--org-bundle", path("genesis.bundle"), "--unencrypted-key"], program: "valised")
        #expect(initRelay.status == 0, "valised init: \(initRelay.stderr)")
        try valise(["admin", "add-relay", "--name", "hq", "--address", "127.0.0.1:7400", "--relay-pub", path("relay/relay.pub")] + org)
    }

    /// Makes each member's device, enrolls it (at its home relay, if one is named), and
    /// pins the resulting bundle on every device.
    func enroll(_ members: [(name: String, home: String?)]) throws {
        for (member, home) in members {
            try valise(["init", "--name", member, "--home", path(member)] + insecure)
            try valise(["admin", "enroll", path("\(member)/enrollment.request"), "--expect-fingerprint", try fingerprint(member)]
                + (home.map { ["--home-relay", $0] } ?? []) + org)
        }
        try valise(["admin", "bundle", "--out", path("org.bundle")] + org)
        for (member, _) in members { try valise(["init", "--home", path(member), "--org-bundle", path("org.bundle")]) }
    }

    /// A device's keys, read from its keystore in this process.
    func deviceIdentity(_ member: String) throws -> DeviceIdentity {
        let keystore = DeviceKeystore(home: ValiseHome(path: path(member)))
        return try keystore.unlock(passphrase: SecretBytes(copying: Array(passphrase.utf8))).identity
    }
}
