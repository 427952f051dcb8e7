import Foundation
import ValiseClient
import ValiseCrypto
import Testing
import ValiseWire

/// A blob uploaded by raw requests, as a client would: its declaration (one fetch at the
/// relay) and its chunks of 262,144 bytes.
struct RawBlobUpload {
    let bytes: [UInt8]
    let id: Data
    let upload: WireBlobUpload

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
        id = Data(BLAKE2b.hash(bytes, outputByteCount: 32))
        var upload = WireBlobUpload()
        upload.blobID = id
        upload.size = UInt64(bytes.count)
        upload.fetches = [WireBlobFetches()]
        upload.fetches[0].count = 1
        self.upload = upload
    }

    func chunk(_ offset: Int) -> WireClientMessage.OneOf_Body {
        var chunk = WireBlobChunk()
        chunk.blobID = id
        chunk.offset = UInt64(offset)
        chunk.data = Data(bytes[offset..<min(offset + 262_144, bytes.count)])
        return .blobChunk(chunk)
    }
}

extension RawBlobUpload {
    /// Fetches the whole blob by BlobFetch from offset 0 (one BlobData at a time), then
    /// reports it fetched: the bytes received, which a test compares with `bytes`.
    func fetchWholeAndReport(_ device: QueueDevice) async throws -> [UInt8] {
        var received: [UInt8] = []
        for _ in 0...(bytes.count / 262_144 + 1) where received.count < bytes.count {
            var fetch = WireBlobFetch()
            fetch.blobID = id
            fetch.offset = UInt64(received.count)
            guard case .blobData(let data)? = try await device.client.request(.blobFetch(fetch)).body, !data.data.isEmpty else {
                Issue.record("no BlobData at \(received.count)")
                break
            }
            received += data.data
        }
        var fetched = WireBlobFetched()
        fetched.blobID = id
        try await device.client.post(.blobFetched(fetched))
        return received
    }
}
