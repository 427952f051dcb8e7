public import ValiseDirectory
import ValiseCrypto
import ValiseStore

/// `admin.pub` files: written by `valise admin keygen`, read by whoever writes a genesis or
/// changes the admins.
public enum AdminPublicKeyFile {
    public static func write(_ file: AdminPublicFile, to path: String) throws(ClientError) {
        do {
            try SecureFile.writeAtomically(file.armoredFileBytes(), to: path, mode: 0o644)
        } catch {
            throw ClientError(error)
        }
    }

    public static func read(_ path: String) throws(ClientError) -> AdminPublicFile {
        let bytes = try PublicFile.read(path, maximumByteCount: Armor.maximumByteCount)
        do {
            return try AdminPublicFile(fileBytes: bytes)
        } catch {
            throw ClientError(kind: .usage, code: error.code, message: "\(path): \(error.message)")
        }
    }
}

/// `relay.pub` files: written by `valised init`, read by `valise admin add-relay`.
public enum RelayPublicKeyFile {
    public static func write(_ file: RelayPublicFile, to path: String) throws(ClientError) {
        do {
            try SecureFile.writeAtomically(file.armoredFileBytes(), to: path, mode: 0o644)
        } catch {
            throw ClientError(error)
        }
    }

    public static func read(_ path: String) throws(ClientError) -> RelayPublicFile {
        let bytes = try PublicFile.read(path, maximumByteCount: Armor.maximumByteCount)
        do {
            return try RelayPublicFile(fileBytes: bytes)
        } catch {
            throw ClientError(kind: .usage, code: error.code, message: "\(path): \(error.message)")
        }
    }
}

/// Organisation bundles written for staff devices (public: keys and signatures only).
public enum OrganisationBundleWriter {
    public static func write(_ bundle: OrganisationBundle, to path: String) throws(ClientError) {
        do {
            try SecureFile.writeAtomically(bundle.encoded(), to: path, mode: 0o644)
        } catch {
            throw ClientError(error)
        }
    }
}
