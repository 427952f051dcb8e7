#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ValiseCrypto

// Saved for the signal handlers, which cannot capture context: if the user interrupts at the
// prompt the terminal gets its echo back before the process ends, and if they suspend it
// (Ctrl-Z) echo is back while stopped and off again when resumed (as readpassphrase(3)).
nonisolated(unsafe) private var savedTerminal = termios()
nonisolated(unsafe) private var silentTerminal = termios()
nonisolated(unsafe) private var savedTerminalDescriptor: Int32 = -1

/// Signals that end the process at the prompt.
private let endingSignals = [SIGINT, SIGTERM, SIGHUP, SIGQUIT]

private func restoreTerminalAndExit(_ signal: Int32) {
    if savedTerminalDescriptor >= 0 {
        tcsetattr(savedTerminalDescriptor, TCSAFLUSH, &savedTerminal)
        _ = write(savedTerminalDescriptor, "\n", 1)
    }
    Glibc.signal(signal, SIG_DFL)
    raise(signal)
}

private func suspendAtPrompt(_ signal: Int32) {
    guard savedTerminalDescriptor >= 0 else { return }
    tcsetattr(savedTerminalDescriptor, TCSAFLUSH, &savedTerminal)
    Glibc.signal(SIGTSTP, SIG_DFL)
    var stop = sigset_t()
    sigemptyset(&stop)
    sigaddset(&stop, SIGTSTP)
    sigprocmask(SIG_UNBLOCK, &stop, nil)
    kill(getpid(), SIGTSTP)
    // Resumed.
    Glibc.signal(SIGTSTP, suspendAtPrompt)
    tcsetattr(savedTerminalDescriptor, TCSAFLUSH, &silentTerminal)
}

/// Asks for a secret on the controlling terminal (`/dev/tty`) with echo off, reading it
/// byte by byte into guarded memory.
public enum TerminalPrompt {
    /// Reads one line of ordinary (echoed) input on the terminal: a confirmation, not a secret.
    public static func readLine(prompt: String, missingTerminalHint: String) throws(ClientError) -> String {
        let fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard fd >= 0 else {
            throw .usage("no-terminal", "there is no terminal to ask on: \(missingTerminalHint)")
        }
        defer { close(fd) }
        try checkForeground(foregroundGroup: tcgetpgrp(fd), processGroup: getpgrp(), hint: missingTerminalHint)
        _ = prompt.withCString { write(fd, $0, strlen($0)) }
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while bytes.count < 1024 {
            let n = read(fd, &byte, 1)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 || byte == UInt8(ascii: "\n") { break }
            bytes.append(byte)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Refuses to read a terminal this process does not own: started in the background
    /// (`valise agent &`), it shares the terminal with the shell, and what the person types
    /// next — the passphrase — would go to the shell, its screen and its history. Checked
    /// before the terminal is touched at all (even turning echo off would stop the process).
    static func checkForeground(foregroundGroup: pid_t, processGroup: pid_t, hint: String) throws(ClientError) {
        guard foregroundGroup == processGroup else {
            throw .usage(
                "background-terminal",
                "valise is not in the foreground of its terminal (started with &?), so it will not read the terminal, where the shell would take what you type; run it in the foreground, or \(hint)")
        }
    }

    /// The hint when there is no terminal and no other source: says which flag or variable
    /// would have given the passphrase.
    static func readSecret(prompt: String, noTerminalHint: String) throws(ClientError) -> SecretBytes {
        let fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard fd >= 0 else {
            throw .usage("no-passphrase", "no passphrase given and no terminal to ask on: \(noTerminalHint)")
        }
        defer { close(fd) }
        try checkForeground(foregroundGroup: tcgetpgrp(fd), processGroup: getpgrp(), hint: noTerminalHint)

        var original = termios()
        let isTerminal = tcgetattr(fd, &original) == 0
        // Echo goes off (discarding anything typed ahead) before the prompt appears, as
        // readpassphrase(3) does: whatever is typed after the prompt is never shown.
        if isTerminal {
            savedTerminal = original
            silentTerminal = original
            silentTerminal.c_lflag &= ~tcflag_t(ECHO)
            savedTerminalDescriptor = fd
            for ending in endingSignals { signal(ending, restoreTerminalAndExit) }
            signal(SIGTSTP, suspendAtPrompt)
            tcsetattr(fd, TCSAFLUSH, &silentTerminal)
        }
        _ = prompt.withCString { write(fd, $0, strlen($0)) }
        defer {
            if isTerminal {
                tcsetattr(fd, TCSAFLUSH, &original)
                for ending in endingSignals + [SIGTSTP] { signal(ending, SIG_DFL) }
                savedTerminalDescriptor = -1
            }
            _ = write(fd, "\n", 1)
        }

        let limit = PassphraseReader.maximumByteCount + 1
        var count = 0
        let buffer = SecretBytes(count: limit) { out in
            while count < limit {
                let n = read(fd, out.baseAddress! + count, 1)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 || out[count] == UInt8(ascii: "\n") { break }
                count += 1
            }
        }
        return PassphraseReader.firstLine(of: buffer.slice(0..<count))
    }
}
