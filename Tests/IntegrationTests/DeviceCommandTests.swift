import Foundation
import Testing
import ValiseTestSupport

/// `valise init`, `whoami` and `passwd` as real processes, with every passphrase source.
/// Most tests use the insecure-test KDF profile to stay fast; one runs the standard profile.
@Suite("valise init, whoami and passwd", .serialized)
struct DeviceCommandTests {
    let directory = TemporaryDirectory()
    var home: String { directory.file("home") }
    var keystore: String { home + "/device.key" }
    let passphrase = "correct horse battery staple"

    func passphraseFile(_ text: String, name: String = "passphrase", mode: mode_t = 0o600) throws -> String {
        let path = directory.file(name)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, mode)
        return path
    }

    func initDevice(_ name: String = "alice@jakarta", extra: [String] = []) throws -> ValiseCLI.Result {
        let file = try passphraseFile(passphrase + "\n")
        return try ValiseCLI.run(["init", "--name", name, "--home", home, "--passphrase-file", file, "--kdf-profile", "insecure-test"] + extra)
    }

    func fingerprint(in output: String) -> String? {
        output.split(separator: "\n").first { $0.hasPrefix("fingerprint:") }
            .map { $0.dropFirst("fingerprint:".count).trimmingCharacters(in: .whitespaces) }
    }

    func keystoreBytes() throws -> Data { try Data(contentsOf: URL(fileURLWithPath: keystore)) }

    @Test("init then whoami with a passphrase file")
    func passphraseFileSource() throws {
        let created = try initDevice()
        #expect(created.status == 0, "\(created.stderr)")
        let printed = try #require(fingerprint(in: created.stdout))
        #expect(printed.split(separator: " ").count == 6)

        let file = try passphraseFile(passphrase + "\r\n", name: "crlf")
        let whoami = try ValiseCLI.run(["whoami", "--home", home, "--passphrase-file", file])
        #expect(whoami.status == 0, "\(whoami.stderr)")
        #expect(whoami.stdout.contains("member:        alice@jakarta"))
        #expect(fingerprint(in: whoami.stdout) == printed)
        // The weak test profile is announced every time.
        #expect(whoami.stderr.contains("warning:") && whoami.stderr.contains("insecure-test"))
    }

    @Test("init then whoami with VALISE_PASSPHRASE, and --json output")
    func environmentSource() throws {
        let created = try ValiseCLI.run(
            ["init", "--name", "bob@nairobi", "--home", home, "--kdf-profile", "insecure-test", "--json"],
            environment: ["VALISE_PASSPHRASE": passphrase]
        )
        #expect(created.status == 0, "\(created.stderr)")
        let whoami = try ValiseCLI.run(["whoami", "--json"], environment: ["VALISE_PASSPHRASE": passphrase, "VALISE_HOME": home])
        #expect(whoami.status == 0, "\(whoami.stderr)")
        let before = try JSONSerialization.jsonObject(with: Data(created.stdout.utf8)) as? [String: Any]
        let after = try JSONSerialization.jsonObject(with: Data(whoami.stdout.utf8)) as? [String: Any]
        #expect(after?["member"] as? String == "bob@nairobi")
        #expect(after?["fingerprint"] as? String == before?["fingerprint"] as? String)
        #expect((after?["identityKey"] as? String)?.count == 64)
        let keystoreInfo = after?["keystore"] as? [String: Any]
        #expect(keystoreInfo?["kdfProfile"] as? String == "insecure-test")
        #expect(keystoreInfo?["meetsStandard"] as? Bool == false)
    }

    @Test("init then whoami typed at a terminal prompt, without echo")
    func terminalSource() throws {
        let initSession = try TerminalSession(["init", "--name", "carol@geneva", "--home", home, "--kdf-profile", "insecure-test"])
        #expect(initSession.waitFor("New passphrase for carol@geneva: "))
        initSession.type(passphrase)
        #expect(initSession.waitFor("Type it again: "))
        initSession.type(passphrase)
        #expect(initSession.finish() == 0, "\(initSession.transcript)")
        #expect(initSession.transcript.contains("fingerprint:"))
        #expect(!initSession.transcript.contains(passphrase), "the passphrase was echoed")

        let whoami = try TerminalSession(["whoami", "--home", home])
        #expect(whoami.waitFor("Passphrase for "))
        whoami.type(passphrase)
        #expect(whoami.finish() == 0, "\(whoami.transcript)")
        #expect(whoami.transcript.contains("member:        carol@geneva"))
        #expect(!whoami.transcript.contains(passphrase))
    }

    @Test("quitting at the prompt (Ctrl-\\ or Ctrl-C) restores echo and prints no crash report", arguments: [UInt8(0x1c), UInt8(0x03)])
    func interruptAtPrompt(key: UInt8) throws {
        #expect(try initDevice().status == 0)
        let session = try TerminalSession(["whoami", "--home", home])
        #expect(session.waitFor("Passphrase for "))
        #expect(!session.echoIsOn)
        session.press([key])
        let status = session.finish()
        #expect(status == 128 + (key == 0x1c ? SIGQUIT : SIGINT))
        #expect(session.echoIsOn)
        #expect(!session.transcript.contains("crashed"))
        #expect(!session.transcript.contains("Backtrac"))
    }

    @Test("a mistyped confirmation at the terminal creates nothing")
    func terminalMismatch() throws {
        let session = try TerminalSession(["init", "--name", "carol@geneva", "--home", home, "--kdf-profile", "insecure-test"])
        #expect(session.waitFor("New passphrase"))
        session.type(passphrase)
        #expect(session.waitFor("Type it again: "))
        session.type(passphrase + "!")
        #expect(session.finish() == 64)
        #expect(session.transcript.contains("the two passphrases differ"))
        #expect(!FileManager.default.fileExists(atPath: keystore))
    }

    @Test("the standard profile (Argon2id, 256 MiB): init and whoami without a warning")
    func standardProfile() throws {
        let created = try ValiseCLI.run(["init", "--name", "dan@ottawa", "--home", home], environment: ["VALISE_PASSPHRASE": passphrase])
        #expect(created.status == 0, "\(created.stderr)")
        #expect(created.stderr.isEmpty)
        let whoami = try ValiseCLI.run(["whoami", "--home", home, "--json"], environment: ["VALISE_PASSPHRASE": passphrase])
        #expect(whoami.status == 0)
        #expect(whoami.stderr.isEmpty)
        let info = try JSONSerialization.jsonObject(with: Data(whoami.stdout.utf8)) as? [String: Any]
        let keystoreInfo = info?["keystore"] as? [String: Any]
        #expect(keystoreInfo?["kdfProfile"] as? String == "standard")
        #expect(keystoreInfo?["kdfMemoryKiB"] as? Int == 262_144)
        #expect(keystoreInfo?["meetsStandard"] as? Bool == true)
    }

    @Test("a wrong passphrase exits 2 with one clear line and leaves the keystore byte for byte unchanged", arguments: ["file", "environment"])
    func wrongPassphrase(source: String) throws {
        #expect(try initDevice().status == 0)
        let before = try keystoreBytes()
        let result: ValiseCLI.Result
        if source == "file" {
            let wrong = try passphraseFile("correct horse battery stapler\n", name: "wrong")
            result = try ValiseCLI.run(["whoami", "--home", home, "--passphrase-file", wrong])
        } else {
            result = try ValiseCLI.run(["whoami", "--home", home], environment: ["VALISE_PASSPHRASE": "correct horse battery stapler"])
        }
        #expect(result.status == 2)
        #expect(result.stderr == "valise: error: wrong passphrase for \(keystore)\n")
        #expect(result.stdout.isEmpty)
        #expect(try keystoreBytes() == before)
    }

    @Test("a damaged keystore exits 3, says so, and is not rewritten")
    func damagedKeystore() throws {
        #expect(try initDevice().status == 0)
        var bytes = try keystoreBytes()
        bytes.removeLast(10)
        try bytes.write(to: URL(fileURLWithPath: keystore))
        let result = try ValiseCLI.run(["whoami", "--home", home], environment: ["VALISE_PASSPHRASE": passphrase])
        #expect(result.status == 3)
        #expect(result.stderr.contains("truncated"))
        #expect(result.stderr.split(separator: "\n").count == 1)
        #expect(try keystoreBytes() == bytes)
    }

    @Test("invalid names, weak passphrases and a missing passphrase exit 64 without creating anything")
    func refusedInput() throws {
        let badName = try ValiseCLI.run(["init", "--name", "Alice", "--home", home], environment: ["VALISE_PASSPHRASE": passphrase])
        #expect(badName.status == 64)
        #expect(badName.stderr.contains("name@mission"))

        let weak = try ValiseCLI.run(["init", "--name", "alice@jakarta", "--home", home], environment: ["VALISE_PASSPHRASE": "short"])
        #expect(weak.status == 64)
        #expect(weak.stderr.contains("at least 12 characters"))

        let noPassphrase = try ValiseCLI.run(["init", "--name", "alice@jakarta", "--home", home])
        #expect(noPassphrase.status == 64)
        #expect(noPassphrase.stderr.contains("--passphrase-file"))

        let loose = try passphraseFile(passphrase, name: "loose", mode: 0o644)
        let looseResult = try ValiseCLI.run(["init", "--name", "alice@jakarta", "--home", home, "--passphrase-file", loose])
        // A file problem (docs/CLI.md's exit table: 1), as a missing passphrase file is.
        #expect(looseResult.status == 1)
        #expect(looseResult.stderr.contains("chmod 600"))
        let missingFile = try ValiseCLI.run(["init", "--name", "alice@jakarta", "--home", home, "--passphrase-file", home + "-absent"])
        #expect(missingFile.status == 1, "\(missingFile.stderr)")
        #expect(missingFile.stderr.hasPrefix("valise: error: passphrase file: "), "\(missingFile.stderr)")

        #expect(!FileManager.default.fileExists(atPath: keystore))
    }

    @Test("an existing device is refused unless --force, which keeps a backup")
    func existingDevice() throws {
        #expect(try initDevice().status == 0)
        let original = try keystoreBytes()
        let again = try initDevice()
        #expect(again.status == 64)
        #expect(again.stderr.contains("already exists") && again.stderr.contains("--force"))
        #expect(try keystoreBytes() == original)

        let forced = try initDevice(extra: ["--force"])
        #expect(forced.status == 0, "\(forced.stderr)")
        let backupLine = try #require(forced.stdout.split(separator: "\n").first { $0.contains("kept as") })
        let backupPath = String(backupLine.split(separator: " ").last!)
        #expect(try Data(contentsOf: URL(fileURLWithPath: backupPath)) == original)
        #expect(try keystoreBytes() != original)
    }

    @Test("an unusable home is reported in one line")
    func unusableHome() throws {
        let plainFile = try passphraseFile("x", name: "not-a-directory")
        let result = try ValiseCLI.run(
            ["init", "--name", "alice@jakarta", "--home", plainFile + "/home"], environment: ["VALISE_PASSPHRASE": passphrase])
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("valise: error: cannot create directory"))

        let loose = directory.file("loose-home")
        mkdir(loose, 0o755)
        chmod(loose, 0o755)
        let looseResult = try ValiseCLI.run(["init", "--name", "alice@jakarta", "--home", loose], environment: ["VALISE_PASSPHRASE": passphrase])
        #expect(looseResult.status == 1)
        #expect(looseResult.stderr.contains("chmod 700"))
    }

    @Test("whoami without a device exits 4 and says how to make one")
    func noDevice() throws {
        let result = try ValiseCLI.run(["whoami", "--home", home], environment: ["VALISE_PASSPHRASE": passphrase])
        #expect(result.status == 4)
        #expect(result.stderr.contains("valise init"))
    }

    @Test("passwd changes the passphrase; the old one stops working; the keys stay")
    func passwd() throws {
        let created = try initDevice()
        let oldFile = try passphraseFile(passphrase + "\n", name: "old")
        let newFile = try passphraseFile("a completely new passphrase\n", name: "new")
        let changed = try ValiseCLI.run([
            "passwd", "--home", home, "--passphrase-file", oldFile, "--new-passphrase-file", newFile, "--kdf-profile", "insecure-test",
        ])
        #expect(changed.status == 0, "\(changed.stderr)")
        #expect(changed.stdout.contains("Passphrase changed for alice@jakarta."))

        let withNew = try ValiseCLI.run(["whoami", "--home", home, "--passphrase-file", newFile])
        #expect(withNew.status == 0)
        #expect(fingerprint(in: withNew.stdout) == fingerprint(in: created.stdout))
        #expect(try ValiseCLI.run(["whoami", "--home", home, "--passphrase-file", oldFile]).status == 2)
        // No copy under the old passphrase is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: home).sorted() == [".lock", "device.key", "enrollment.request"])
    }
}
