public import ValiseDirectory
import ValiseCrypto
import ValiseStore

/// Enrollment and rotation request files: public (keys and signatures only), written for a
/// member to hand to an administrator, read by the administrator.
public enum RequestFile {
    public static func write(_ request: MemberRequest, to path: String) throws(ClientError) {
        do {
            try SecureFile.writeAtomically(request.armoredFileBytes(), to: path, mode: 0o644)
        } catch {
            throw ClientError(error)
        }
    }

    public static func read(_ path: String) throws(ClientError) -> MemberRequest {
        let bytes = try PublicFile.read(path, maximumByteCount: Armor.maximumByteCount)
        do {
            return try MemberRequest(fileBytes: bytes)
        } catch {
            throw ClientError(kind: .usage, code: error.code, message: "\(path): \(error.message)")
        }
    }
}

/// Reads files that hold only public data (requests, public keys, bundles, logs): any
/// permissions, but bounded and never through a symbolic link.
enum PublicFile {
    static func read(_ path: String, maximumByteCount: Int) throws(ClientError) -> [UInt8] {
        do {
            return try SecureFile.read(path, maximumByteCount: maximumByteCount, access: .any)
        } catch {
            throw ClientError(error)
        }
    }
}
