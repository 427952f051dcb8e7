import Testing
@testable import ValiseClient

/// The prompt's refusal to read a terminal this process does not own, with the process
/// groups injected (tests have no terminal of their own).
@Suite("Terminal prompt: never from the background")
struct TerminalPromptTests {
    @Test("a process outside the terminal's foreground group refuses, naming the way out")
    func background() {
        let error = #expect(throws: ClientError.self) {
            try TerminalPrompt.checkForeground(foregroundGroup: 4242, processGroup: 5151, hint: "use --passphrase-file FILE")
        }
        #expect(error?.code == "background-terminal")
        #expect(error?.kind == .usage)
        #expect(error?.message.contains("not in the foreground") == true)
        #expect(error?.message.contains("use --passphrase-file FILE") == true)
    }

    @Test("a terminal whose foreground group cannot be read (tcgetpgrp fails) is not read either")
    func unknownForeground() {
        #expect(throws: ClientError.self) {
            try TerminalPrompt.checkForeground(foregroundGroup: -1, processGroup: 5151, hint: "")
        }
    }

    @Test("the foreground process group may read")
    func foreground() throws {
        try TerminalPrompt.checkForeground(foregroundGroup: 5151, processGroup: 5151, hint: "")
    }
}
