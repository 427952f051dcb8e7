#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An open file read or written in pieces (attachments, blobs, spool files), so that no
/// file is ever held whole in memory. Closed when the object goes.
final class StreamFile {
    let descriptor: Int32
    /// For messages: the path as the person gave it (never a key or a file's contents).
    let shownAs: String

    private init(descriptor: Int32, shownAs: String) {
        self.descriptor = descriptor
        self.shownAs = shownAs
    }

    deinit { close(descriptor) }

    /// Opens a regular file to read (following a symbolic link the person named on purpose).
    static func openForReading(_ path: String, shownAs: String? = nil) throws(ClientError) -> (file: StreamFile, size: UInt64) {
        let shown = shownAs ?? path
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw failure("cannot read \(shown)", errno) }
        let file = StreamFile(descriptor: fd, shownAs: shown)
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw failure("cannot read \(shown)", errno) }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw .usage("not-a-file", "\(shown) is not a regular file (a folder, a device or a pipe cannot be attached)")
        }
        // Back to blocking reads now that a FIFO cannot be what was opened.
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        return (file, UInt64(info.st_size))
    }

    /// Creates a new file, mode 0600, failing if the name exists (never through a link).
    static func createExclusive(_ path: String, shownAs: String? = nil) throws(ClientError) -> StreamFile {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw failure("cannot create \(shownAs ?? path)", errno) }
        return StreamFile(descriptor: fd, shownAs: shownAs ?? path)
    }

    /// Opens an existing private file to append to (a download resumed after a cut).
    static func openForAppending(_ path: String) throws(ClientError) -> (file: StreamFile, size: UInt64) {
        let fd = open(path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw failure("cannot open \(path)", errno) }
        let file = StreamFile(descriptor: fd, shownAs: path)
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { throw failure("cannot open \(path)", errno) }
        return (file, UInt64(info.st_size))
    }

    /// Reads up to `count` bytes, fewer only at the end of the file: from the current
    /// position, or from `offset` (a blob sent in parts).
    func readPiece(upTo count: Int, at offset: UInt64? = nil) throws(ClientError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let got = bytes.withUnsafeMutableBytes { raw in
                let start = raw.baseAddress! + filled
                return offset.map { pread(descriptor, start, count - filled, off_t($0) + off_t(filled)) } ?? read(descriptor, start, count - filled)
            }
            if got < 0 {
                if errno == EINTR { continue }
                throw Self.failure("cannot read \(shownAs)", errno)
            }
            if got == 0 { break }
            filled += got
        }
        if filled < count { bytes.removeSubrange(filled...) }
        return bytes
    }

    func append(_ bytes: [UInt8]) throws(ClientError) {
        var written = 0
        while written < bytes.count {
            let put = bytes.withUnsafeBytes { raw in write(descriptor, raw.baseAddress! + written, bytes.count - written) }
            if put < 0 {
                if errno == EINTR { continue }
                throw Self.failure("cannot write \(shownAs)", errno)
            }
            written += put
        }
    }

    /// Makes what was written durable.
    func sync() throws(ClientError) {
        guard fsync(descriptor) == 0 else { throw Self.failure("cannot write \(shownAs) to disk", errno) }
    }

    static func failure(_ what: String, _ code: Int32) -> ClientError {
        .failure("file", "\(what): \(String(cString: strerror(code)))")
    }
}
