import ValiseStore
#if canImport(Glibc)
import Glibc
#endif

extension RelayServer {
    /// Bytes free to the relay's user on the disk of its directory, where blobs.sqlite is;
    /// nil (not checked) when the blobs are in PostgreSQL, whose disk is not this one.
    static func freeSpace(for configuration: RelayConfiguration) -> @Sendable () -> UInt64? {
        guard configuration.store.kind == .sqlite else { return { nil } }
        let directory = configuration.directory
        return {
            var figures = statvfs()
            guard statvfs(directory, &figures) == 0 else { return nil }
            return UInt64(figures.f_bavail) * UInt64(figures.f_frsize)
        }
    }
}
