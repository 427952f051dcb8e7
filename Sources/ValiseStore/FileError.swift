#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
public import ValiseCrypto

/// A file operation that failed, with the path and what the system said. Never includes
/// file contents.
public struct FileError: CodedError {
    public let code: String
    public let message: String
    public let path: String

    public init(code: String, message: String, path: String) {
        self.code = code
        self.message = message
        self.path = path
    }

    /// The error for a failed system call, from `errno`.
    static func system(_ action: String, _ path: String, errno number: Int32 = errno) -> FileError {
        let reason = String(cString: strerror(number))
        switch number {
        case ENOENT:
            return FileError(code: "not-found", message: "\(path) does not exist", path: path)
        case EACCES, EPERM, EROFS:
            return FileError(code: "permission-denied", message: "cannot \(action) \(path): \(reason)", path: path)
        case ENOSPC, EDQUOT:
            return FileError(code: "no-space", message: "cannot \(action) \(path): no space left on the device", path: path)
        case ELOOP:
            return FileError(
                code: "symbolic-link",
                message: "refusing to \(action) \(path): it is a symbolic link (give the file itself; process substitution is not accepted)",
                path: path)
        default:
            return FileError(code: "io", message: "cannot \(action) \(path): \(reason)", path: path)
        }
    }

    static func insecurePermissions(_ path: String, mode: mode_t, isDirectory: Bool) -> FileError {
        let octal = String(mode & 0o777, radix: 8)
        let fix = isDirectory ? "chmod 700" : "chmod 600"
        return FileError(
            code: "insecure-permissions",
            message: "\(path) can be accessed by other users (mode \(octal)); run: \(fix) \(path)",
            path: path
        )
    }

    static func wrongOwner(_ path: String) -> FileError {
        FileError(code: "wrong-owner", message: "\(path) belongs to another user", path: path)
    }

    static func notRegularFile(_ path: String) -> FileError {
        FileError(code: "not-a-file", message: "\(path) is not a regular file (pipes, devices and directories are not accepted)", path: path)
    }

    static func notDirectory(_ path: String) -> FileError {
        FileError(code: "not-a-directory", message: "\(path) is not a directory", path: path)
    }

    static func tooLarge(_ path: String, limit: Int) -> FileError {
        FileError(code: "too-large", message: "\(path) is larger than \(limit) bytes", path: path)
    }

    static func changedWhileReading(_ path: String) -> FileError {
        FileError(code: "changed", message: "\(path) changed while it was being read; try again", path: path)
    }

    static func busy(_ path: String) -> FileError {
        FileError(
            code: "busy", message: "\(path) is in use by another valise process; try again when it has finished",
            path: path
        )
    }

    static func verificationFailed(_ path: String) -> FileError {
        FileError(
            code: "verification-failed",
            message: "the copy written to \(path) did not read back correctly; nothing was replaced",
            path: path
        )
    }
}
