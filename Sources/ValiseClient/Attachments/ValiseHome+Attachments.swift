import ValiseCrypto
import ValiseStore

extension ValiseHome {
    /// Blobs this device encrypted and has not finished uploading (0700; files 0600).
    public var spoolPath: String { path + "/spool" }
    /// Received blobs, verified and still encrypted (0700; files 0600): `valise save`
    /// decrypts from here.
    public var attachmentsPath: String { path + "/attachments" }

    /// Creates a private folder of the home (0700) or checks that the existing one is.
    func preparePrivateFolder(_ folder: String) throws(ClientError) {
        do {
            try SecureFile.preparePrivateDirectory(folder)
        } catch {
            throw ClientError(error)
        }
    }

    /// The path of a received blob, by its id.
    public func receivedBlobPath(_ blobID: [UInt8]) -> String { attachmentsPath + "/" + Hex.encode(blobID) + ".blob" }
}
