import Testing
import ValiseTestSupport
@testable import ValiseClient
import ValiseCrypto
import ValiseStore

@Suite("Passphrases")
struct PassphraseReaderTests {
    let directory = TemporaryDirectory()

    static func reader(environment: [String: String] = [:], terminal: [String] = []) -> PassphraseReader {
        let answers = Answers(terminal)
        return PassphraseReader(
            environment: { name in environment[name].map { SecretBytes(copying: Array($0.utf8)) } },
            terminal: { (_: String, _: String) throws(ClientError) -> SecretBytes in
                guard let next = answers.next() else { throw .usage("no-terminal", "no terminal") }
                return SecretBytes(copying: Array(next.utf8))
            }
        )
    }

    /// Canned terminal answers, consumed in order.
    final class Answers: @unchecked Sendable {
        private var remaining: [String]
        init(_ answers: [String]) { remaining = answers }
        func next() -> String? { remaining.isEmpty ? nil : remaining.removeFirst() }
    }

    func text(_ secret: SecretBytes) -> String { secret.withUnsafeBytes { String(decoding: $0, as: UTF8.self) } }

    func writePassphraseFile(_ contents: String, mode: UInt32 = 0o600) throws -> String {
        let path = directory.file("passphrase")
        try SecureFile.writeAtomically(Array(contents.utf8), to: path, mode: mode)
        return path
    }

    @Test("the file wins over the environment, which wins over the terminal")
    func precedence() {
        let reader = Self.reader(environment: ["VALISE_PASSPHRASE": "from the environment"])
        #expect(reader.source(file: "/some/file", variable: "VALISE_PASSPHRASE") == .file("/some/file"))
        #expect(reader.source(file: nil, variable: "VALISE_PASSPHRASE") == .environment("VALISE_PASSPHRASE"))
        #expect(reader.source(file: nil, variable: "VALISE_NEW_PASSPHRASE") == .terminal)
    }

    @Test("a passphrase file contributes its first line without the line ending", arguments: [
        ("correct horse battery staple\n", "correct horse battery staple"),
        ("correct horse battery staple\r\nsecond line\n", "correct horse battery staple"),
        ("no line ending at all", "no line ending at all"),
        ("  spaces are kept  \n", "  spaces are kept  "),
    ])
    func firstLine(contents: String, expected: String) throws {
        let path = try writePassphraseFile(contents)
        #expect(text(try Self.reader().read(from: .file(path), prompt: "")) == expected)
    }

    @Test("a passphrase file readable by others, a missing file or an empty first line are refused")
    func badFiles() throws {
        let loose = try writePassphraseFile("correct horse battery staple\n", mode: 0o644)
        let error = #expect(throws: ClientError.self) { try Self.reader().read(from: .file(loose), prompt: "") }
        #expect(error?.message.contains("chmod 600") == true)
        #expect(throws: ClientError.self) { try Self.reader().read(from: .file(directory.file("missing")), prompt: "") }
        let empty = try writePassphraseFile("\nsecond line")
        let emptyError = #expect(throws: ClientError.self) { try Self.reader().read(from: .file(empty), prompt: "") }
        #expect(emptyError?.code == "empty-passphrase")
    }

    @Test("new passphrases need 12 characters, counted as characters rather than bytes")
    func newPassphraseLength() throws {
        let env = ["P": "short pass", "Q": "été à Genève", "R": "twelve chars"]
        let reader = Self.reader(environment: env)
        let short = #expect(throws: ClientError.self) { try reader.readNew(from: .environment("P"), prompt: "") }
        #expect(short?.code == "weak-passphrase")
        #expect(text(try reader.readNew(from: .environment("Q"), prompt: "")) == "été à Genève")
        #expect(text(try reader.readNew(from: .environment("R"), prompt: "")) == "twelve chars")
        // 11 characters in 13 bytes is still too short.
        let accented = Self.reader(environment: ["P": "ééabcdefghi"])
        #expect(throws: ClientError.self) { try accented.readNew(from: .environment("P"), prompt: "") }
    }

    @Test("a terminal asks twice for a new passphrase and refuses a mismatch")
    func terminalConfirmation() throws {
        let matching = Self.reader(terminal: ["correct horse battery", "correct horse battery"])
        #expect(text(try matching.readNew(from: .terminal, prompt: "")) == "correct horse battery")
        let mismatch = Self.reader(terminal: ["correct horse battery", "correct horse batterz"])
        let error = #expect(throws: ClientError.self) { try mismatch.readNew(from: .terminal, prompt: "") }
        #expect(error?.code == "passphrase-mismatch")
    }

    @Test("over-long passphrases are refused")
    func tooLong() {
        let reader = Self.reader(environment: ["P": String(repeating: "x", count: 1025)])
        #expect(throws: ClientError.self) { try reader.read(from: .environment("P"), prompt: "") }
    }

    /// Accepts only "right passphrase", as a keystore would, counting the tries.
    final class Lock: @unchecked Sendable {
        var tries = 0
        func open(_ passphrase: SecretBytes) throws(ClientError) -> String {
            tries += 1
            let text = passphrase.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
            guard text == "right passphrase" else { throw ClientError(kind: .wrongPassphrase, code: "wrong-passphrase", message: "wrong passphrase") }
            return text
        }
    }

    @Test("at the terminal a wrong passphrase is asked again, three tries in all, as ssh")
    func terminalRetries() throws {
        let lock = Lock()
        let opened = try Self.reader(terminal: ["typo", "another typo", "right passphrase"])
            .unlock(from: .terminal, prompt: "Passphrase: ") { (passphrase) throws(ClientError) in try lock.open(passphrase) }
        #expect(opened == "right passphrase")
        #expect(lock.tries == 3)

        let tooMany = Lock()
        #expect(throws: ClientError(kind: .wrongPassphrase, code: "wrong-passphrase", message: "")) {
            try Self.reader(terminal: ["one", "two", "three", "right passphrase"])
                .unlock(from: .terminal, prompt: "Passphrase: ") { (passphrase) throws(ClientError) in try tooMany.open(passphrase) }
        }
        #expect(tooMany.tries == PassphraseReader.terminalAttempts)
    }

    @Test("from a variable or a file a wrong passphrase fails at once: asking again would read the same")
    func noRetryWithoutTerminal() throws {
        let lock = Lock()
        let error = #expect(throws: ClientError.self) {
            try Self.reader(environment: ["VALISE_PASSPHRASE": "typo"])
                .unlock(from: .environment("VALISE_PASSPHRASE"), prompt: "Passphrase: ") { (passphrase) throws(ClientError) in try lock.open(passphrase) }
        }
        #expect(error?.kind == .wrongPassphrase)
        #expect(lock.tries == 1)
    }

    @Test("a missing passphrase file is a file problem (exit 1), not bad input")
    func missingFileIsFailure() {
        let error = #expect(throws: ClientError.self) {
            try Self.reader().read(from: .file(directory.file("absent")), prompt: "")
        }
        #expect(error?.kind == .failure)
    }
}
