import Foundation
import Testing
import ValiseTestSupport
@testable import ValiseStore
import ValiseCrypto

/// Not the queue's contract (no store kinds): the files Valise writes itself.
@Suite("Secure files")
struct SecureFileTests {
    let directory = TemporaryDirectory()

    @Test("an atomic write creates a private file with exactly the bytes, and replaces atomically")
    func atomicWrite() throws {
        let path = directory.file("key")
        try SecureFile.writeAtomically([1, 2, 3], to: path)
        #expect(try SecureFile.read(path, maximumByteCount: 10) == [1, 2, 3])
        #expect(mode(of: path) == 0o600)
        try SecureFile.writeAtomically([4, 5], to: path)
        #expect(try SecureFile.read(path, maximumByteCount: 10) == [4, 5])
        // No temporary files are left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["key"])
    }

    @Test("a write that fails names the file asked for, never the temporary file beside it")
    func failureNamesTheFile() throws {
        let path = directory.file("missing/bundle")
        let error = #expect(throws: FileError.self) { try SecureFile.writeAtomically([1], to: path, mode: 0o644) }
        #expect(error?.path == path)
        #expect(error?.message == "cannot write \(path): the directory \(directory.file("missing")) does not exist")
        #expect(error?.message.contains(".tmp-") == false)
    }

    @Test("a backup keeps the replaced file, under a new name if one exists")
    func backup() throws {
        let path = directory.file("key")
        try SecureFile.writeAtomically([1], to: path)
        let first = try SecureFile.writeAtomically([2], to: path, backupSuffix: ".backup")
        #expect(first == path + ".backup")
        let second = try SecureFile.writeAtomically([3], to: path, backupSuffix: ".backup")
        #expect(second == path + ".backup-2")
        #expect(try SecureFile.read(path + ".backup", maximumByteCount: 1) == [1])
        #expect(try SecureFile.read(path + ".backup-2", maximumByteCount: 1) == [2])
        #expect(try SecureFile.read(path, maximumByteCount: 1) == [3])
    }

    @Test("a failed verification leaves the old file and no temporary file")
    func failedVerification() throws {
        let path = directory.file("key")
        try SecureFile.writeAtomically([1, 2, 3], to: path)
        #expect(throws: FileError.self) {
            try SecureFile.writeAtomically([9, 9], to: path) { _ in false }
        }
        #expect(try SecureFile.read(path, maximumByteCount: 10) == [1, 2, 3])
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["key"])
    }

    @Test("reads refuse symbolic links, loose permissions, other file types and oversized files")
    func readChecks() throws {
        let path = directory.file("key")
        try SecureFile.writeAtomically([1, 2, 3], to: path)

        let link = directory.file("link")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: path)
        #expect(throws: FileError.self) { try SecureFile.read(link, maximumByteCount: 10) }

        chmod(path, 0o644)
        let error = #expect(throws: FileError.self) { try SecureFile.read(path, maximumByteCount: 10) }
        #expect(error?.code == "insecure-permissions")
        #expect(error?.message.contains("chmod 600") == true)
        #expect(try SecureFile.read(path, maximumByteCount: 10, access: .any) == [1, 2, 3])
        chmod(path, 0o600)

        #expect(throws: FileError.self) { try SecureFile.read(directory.path, maximumByteCount: 10) }
        let tooLarge = #expect(throws: FileError.self) { try SecureFile.read(path, maximumByteCount: 2) }
        #expect(tooLarge?.code == "too-large")
        let missing = #expect(throws: FileError.self) { try SecureFile.read(directory.file("none"), maximumByteCount: 2) }
        #expect(missing?.code == "not-found")
    }

    @Test("secret reads land in guarded memory with the same bytes")
    func secretRead() throws {
        let path = directory.file("passphrase")
        try SecureFile.writeAtomically(Array("line one\nline two".utf8), to: path)
        let secret = try SecureFile.readSecret(path, maximumByteCount: 100)
        #expect(secret.withUnsafeBytes { Array($0) } == Array("line one\nline two".utf8))
    }

    @Test("a private directory is created with mode 0700; a loose existing one is refused")
    func privateDirectory() throws {
        let home = directory.file("home")
        try SecureFile.preparePrivateDirectory(home)
        #expect(mode(of: home) == 0o700)
        try SecureFile.preparePrivateDirectory(home)

        chmod(home, 0o755)
        let error = #expect(throws: FileError.self) { try SecureFile.preparePrivateDirectory(home) }
        #expect(error?.code == "insecure-permissions")

        try SecureFile.writeAtomically([1], to: directory.file("plain"))
        #expect(throws: FileError.self) { try SecureFile.preparePrivateDirectory(directory.file("plain")) }
        #expect(throws: FileError.self) { try SecureFile.preparePrivateDirectory(directory.file("missing/child")) }
    }

    @Test("a lock is exclusive until released")
    func lock() throws {
        let path = directory.file(".lock")
        var first: FileLock? = try FileLock(path: path)
        let error = #expect(throws: FileError.self) { try FileLock(path: path) }
        #expect(error?.code == "busy")
        _ = first
        first = nil
        _ = try FileLock(path: path)
    }
}

@Suite("Secure files: hostile paths")
struct SecureFileHostileTests {
    let directory = TemporaryDirectory()

    @Test("a FIFO is refused at once instead of blocking")
    func fifo() throws {
        let path = directory.file("fifo")
        #expect(mkfifo(path, 0o600) == 0)
        let error = #expect(throws: FileError.self) { try SecureFile.read(path, maximumByteCount: 100) }
        #expect(error?.code == "not-a-file")
        #expect(throws: FileError.self) { try SecureFile.readSecret(path, maximumByteCount: 100) }
    }

    @Test("a private directory that became shared is refused by the check")
    func sharedDirectory() throws {
        let home = directory.file("home")
        try SecureFile.preparePrivateDirectory(home)
        try SecureFile.checkPrivateDirectory(home)
        chmod(home, 0o777)
        let error = #expect(throws: FileError.self) { try SecureFile.checkPrivateDirectory(home) }
        #expect(error?.code == "insecure-permissions")
    }
}
