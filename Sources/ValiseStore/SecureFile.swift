#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
public import ValiseCrypto

/// Files that hold keys: read with bounds and permission checks, written atomically and
/// durably (temporary file, fsync, rename, fsync of the directory), never through a
/// symbolic link.
public enum SecureFile {
    /// Who may read a file or directory that is checked.
    public enum Access: Sendable {
        /// Only the owner (mode 0600 or 0700); anything looser is refused, as ssh does.
        case ownerOnly
        /// Anyone (public files such as `relay.pub`).
        case any
    }

    public static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    /// Reads a whole regular file of at most `maximumByteCount` bytes.
    public static func read(
        _ path: String, maximumByteCount: Int, access: Access = .ownerOnly
    ) throws(FileError) -> [UInt8] {
        let (fd, size) = try openForReading(path, maximumByteCount: maximumByteCount, access: access)
        defer { close(fd) }
        // One byte more than the file's size, to notice a file that grew while being read.
        var bytes = [UInt8](repeating: 0, count: size + 1)
        let result = bytes.withUnsafeMutableBytes { raw in
            Result { () throws(FileError) -> Int in try readAll(fd, into: raw, path: path) }
        }
        let count = try result.get()
        guard count <= size else { throw .changedWhileReading(path) }
        bytes.removeSubrange(count...)
        return bytes
    }

    /// Reads a whole file straight into guarded memory (passphrase files), so its contents
    /// never sit in ordinary memory.
    public static func readSecret(
        _ path: String, maximumByteCount: Int, access: Access = .ownerOnly
    ) throws(FileError) -> SecretBytes {
        let (fd, size) = try openForReading(path, maximumByteCount: maximumByteCount, access: access)
        defer { close(fd) }
        var count = 0
        let whole = try SecretBytes(count: size + 1) { (raw) throws(FileError) in
            count = try readAll(fd, into: raw, path: path)
        }
        guard count <= size else { throw .changedWhileReading(path) }
        return whole.slice(0..<count)
    }

    private static func openForReading(
        _ path: String, maximumByteCount: Int, access: Access
    ) throws(FileError) -> (fd: Int32, size: Int) {
        // Non-blocking, so that a FIFO given as a key or passphrase file is refused below
        // instead of waiting for a writer; the flag is cleared once it is a regular file.
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw .system("read", path) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let error = FileError.system("read", path)
            close(fd)
            throw error
        }
        do throws(FileError) {
            guard (info.st_mode & S_IFMT) == S_IFREG else { throw FileError.notRegularFile(path) }
            guard fcntl(fd, F_SETFL, O_RDONLY) == 0 else { throw FileError.system("read", path) }
            guard Int(info.st_size) <= maximumByteCount else { throw FileError.tooLarge(path, limit: maximumByteCount) }
            if access == .ownerOnly {
                guard info.st_uid == geteuid() else { throw FileError.wrongOwner(path) }
                guard info.st_mode & 0o077 == 0 else {
                    throw FileError.insecurePermissions(path, mode: info.st_mode, isDirectory: false)
                }
            }
        } catch {
            close(fd)
            throw error
        }
        return (fd, Int(info.st_size))
    }

    /// Reads until end of file or until `raw` is full; returns the count read.
    private static func readAll(_ fd: Int32, into raw: UnsafeMutableRawBufferPointer, path: String) throws(FileError) -> Int {
        var total = 0
        while total < raw.count {
            let n = Glibc.read(fd, raw.baseAddress! + total, raw.count - total)
            if n < 0 {
                if errno == EINTR { continue }
                throw .system("read", path)
            }
            if n == 0 { break }
            total += n
        }
        return total
    }

    /// Creates `path` as a directory only its owner can use, or checks that an existing one
    /// is such a directory. The parent must exist.
    public static func preparePrivateDirectory(_ path: String) throws(FileError) {
        if mkdir(path, 0o700) == 0 {
            // mkdir applies the umask, which can only remove bits; chmod makes it exact.
            guard chmod(path, 0o700) == 0 else { throw .system("set permissions on", path) }
            try syncDirectory(parent(of: path))
            return
        }
        guard errno == EEXIST else { throw .system("create directory", path) }
        var info = stat()
        guard stat(path, &info) == 0 else { throw .system("inspect", path) }
        try checkPrivateDirectory(path)
        guard access(path, W_OK | X_OK) == 0 else { throw .system("write in", path) }
    }

    /// Checks that an existing directory is private to its owner (mode 0700 or stricter), as
    /// `preparePrivateDirectory` would, without creating anything.
    public static func checkPrivateDirectory(_ path: String) throws(FileError) {
        var info = stat()
        guard stat(path, &info) == 0 else { throw .system("inspect", path) }
        guard (info.st_mode & S_IFMT) == S_IFDIR else { throw .notDirectory(path) }
        guard info.st_uid == geteuid() else { throw .wrongOwner(path) }
        guard info.st_mode & 0o077 == 0 else { throw .insecurePermissions(path, mode: info.st_mode, isDirectory: true) }
    }

    /// Replaces (or creates) `path` with `bytes`, atomically and durably:
    ///
    /// 1. write a new temporary file beside it (mode `mode`, exclusive, not through a link);
    /// 2. fsync it, then read it back and let `verify` check what the disk returns;
    /// 3. if `backupSuffix` is given and `path` exists, hard-link the old file to
    ///    `path + backupSuffix` (a new name is chosen if that exists);
    /// 4. rename the temporary file over `path`, and fsync the directory.
    ///
    /// Until step 4 the old file is untouched; if anything fails the temporary file is
    /// removed and the old file stays. Returns the backup's path, if one was made.
    @discardableResult
    public static func writeAtomically(
        _ bytes: [UInt8], to path: String, mode: UInt32 = 0o600, backupSuffix: String? = nil,
        verify: ([UInt8]) -> Bool = { _ in true }
    ) throws(FileError) -> String? {
        let directory = parent(of: path)
        let temporary = "\(directory)/.\(baseName(of: path)).tmp-\(Hex.encode(Random.bytes(count: 8)))"
        do throws(FileError) {
            try writeNewFile(bytes, to: temporary, mode: mode_t(mode), shownAs: path)
            let readBack = try read(temporary, maximumByteCount: bytes.count, access: .any)
            guard readBack == bytes, verify(readBack) else { throw FileError.verificationFailed(path) }
            var backup: String?
            if let backupSuffix, exists(path) {
                backup = try linkBackup(of: path, suffix: backupSuffix)
            }
            guard rename(temporary, path) == 0 else {
                let error = FileError.system("replace", path)
                if let backup { unlink(backup) }
                throw error
            }
            do throws(FileError) {
                try syncDirectory(directory)
            } catch {
                // The new file is in place; only its durability across a power cut is unsure.
                throw FileError(
                    code: "not-durable",
                    message: "\(path) was replaced, but its directory could not be flushed to disk (\(error.message)); it may not survive a power cut",
                    path: path)
            }
            return backup
        } catch {
            unlink(temporary)
            throw error
        }
    }

    /// Writes the temporary file `path`; errors name `shown`, the file the caller asked
    /// for, since the temporary name means nothing to the person who gave it.
    private static func writeNewFile(_ bytes: [UInt8], to path: String, mode: mode_t, shownAs shown: String) throws(FileError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else {
            if errno == ENOENT {
                throw FileError(code: "not-found", message: "cannot write \(shown): the directory \(parent(of: shown)) does not exist", path: shown)
            }
            throw .system("write", shown)
        }
        defer { close(fd) }
        // The executables run under umask 077, which narrows open's mode: a file meant to be
        // shared (mode 0644: public keys, bundles, requests) gets its mode back here.
        guard fchmod(fd, mode) == 0 else { throw .system("set permissions on", shown) }
        let failure: Int32? = bytes.withUnsafeBytes { raw in
            var written = 0
            while written < raw.count {
                let n = write(fd, raw.baseAddress! + written, raw.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                written += n
            }
            return nil
        }
        if let failure { throw .system("write", shown, errno: failure) }
        guard fsync(fd) == 0 else { throw .system("flush", shown) }
    }

    private static func linkBackup(of path: String, suffix: String) throws(FileError) -> String {
        var candidate = path + suffix
        var attempt = 1
        while link(path, candidate) != 0 {
            guard errno == EEXIST, attempt < 100 else { throw .system("back up", path) }
            attempt += 1
            candidate = "\(path)\(suffix)-\(attempt)"
        }
        return candidate
    }

    /// The names in a directory (without "." and ".."), or an error.
    public static func list(_ path: String) throws(FileError) -> [String] {
        guard let directory = opendir(path) else { throw .system("list", path) }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Overwrites a key file with random bytes, flushes, and removes it. (On a journaling or
    /// copy-on-write file system, or an SSD, old blocks may survive an overwrite; the
    /// keystore is encrypted under the passphrase either way.) A missing file is not an error.
    public static func shred(_ path: String) throws(FileError) {
        let fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return }
            throw .system("open", path)
        }
        var info = stat()
        if fstat(fd, &info) == 0 && info.st_size > 0 {
            let noise = Random.bytes(count: Int(info.st_size))
            _ = noise.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
            _ = fsync(fd)
        }
        close(fd)
        guard unlink(path) == 0 else { throw .system("remove", path) }
        try syncDirectory(parent(of: path))
    }

    /// Makes a directory's entries durable (a rename is only durable once its directory is).
    public static func syncDirectory(_ path: String) throws(FileError) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw .system("open directory", path) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw .system("flush directory", path) }
    }

    /// The directory holding `path` ("." for a bare name).
    public static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let head = path[..<slash]
        return head.isEmpty ? "/" : String(head)
    }

    static func baseName(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }
}

/// An exclusive advisory lock (flock) on a file, held until the object is released, so two
/// valise processes never rewrite the same keystore at once.
public final class FileLock {
    private let fd: Int32

    /// Takes the lock or fails at once with `busy`; never waits.
    public init(path: String) throws(FileError) {
        let fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .system("open lock file", path) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let error: FileError = errno == EWOULDBLOCK ? .busy(path) : .system("lock", path)
            close(fd)
            throw error
        }
        self.fd = fd
    }

    /// Takes the lock as `init(path:)` does, then writes this process's id into the file,
    /// so that a process that finds it held can name the holder (`holder(of:)`).
    public convenience init(path: String, recordingProcessID: Bool) throws(FileError) {
        try self.init(path: path)
        guard recordingProcessID else { return }
        let text = Array("\(getpid())\n".utf8)
        guard ftruncate(fd, 0) == 0, text.withUnsafeBytes({ pwrite(fd, $0.baseAddress, $0.count, 0) }) == text.count else {
            throw .system("write", path)
        }
    }

    /// The process id recorded in a lock file, if it holds one (read, not trusted: the
    /// holder may have died, which frees the lock anyway).
    public static func holder(of path: String) -> Int32? {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 16)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        let digits = buffer[0..<count].prefix { (0x30...0x39).contains($0) }
        return Int32(String(decoding: digits, as: UTF8.self)).flatMap { $0 > 0 ? $0 : nil }
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }
}
