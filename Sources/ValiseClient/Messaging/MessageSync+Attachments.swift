#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import NIOCore
import ValiseCrypto
import ValiseDirectory
import ValiseSession
import ValiseStore
import ValiseWire

/// Blobs to and from the home relay (docs/PROTOCOL.md, "Blobs" and "Attachments"): parts
/// of 256 KiB, eight in flight, resumed from what the relay (or the local file) already has.
extension MessageSync {
    static let wirePartByteCount = 262_144
    static let partsInFlight = 8

    // MARK: Upload

    /// Uploads every blob the outbox waits for, so that the messages that refer to them can
    /// go. A relay that refuses one (too large, over its quota, its disk full) leaves it and
    /// its messages in the outbox, with a notice; a lost connection stops here, and the next
    /// sync resumes from what the relay committed.
    public func uploadBlobs() async throws(ClientError) {
        for upload in try messenger.incompleteUploads() {
            if let limit = maximumBlobBytes, upload.size > limit {
                report.notices.append(
                    limit == 0
                        ? "this relay takes no attachments; the message with a file of \(ByteCount.describe(upload.size)) stays in the outbox"
                        : "the relay takes attachments of at most \(ByteCount.describe(limit)); the message with a file of \(ByteCount.describe(upload.size)) stays in the outbox")
                continue
            }
            do {
                try await uploadBlob(upload)
            } catch where Self.isRefusal(error) && error.code != "relay-\(WireErrorCode.blobMismatch)" {
                let why = error.code == "relay-\(WireErrorCode.tooLarge)" ? "the file is larger than the relay takes" : error.message
                report.notices.append("an attachment was not uploaded (\(why)); its message stays in the outbox")
            }
        }
    }

    private func uploadBlob(_ upload: Messenger.Upload) async throws(ClientError) {
        var declaration = WireBlobUpload()
        declaration.blobID = Data(upload.blobID)
        declaration.size = upload.size
        declaration.ttl = WireTTLClass(rawValue: upload.ttl + 1) ?? .week
        declaration.fetches = upload.fetches.map { relay, count in
            var fetches = WireBlobFetches()
            // This device's own relay may be left unnamed.
            fetches.relay = relay == self.relay.name ? "" : relay
            fetches.count = count
            return fetches
        }
        var state = try checkedState(try await client.request(.blobUpload(declaration)), upload)
        if !state.complete {
            let (file, size) = try StreamFile.openForReading(upload.path)
            guard size == upload.size else { throw .failure("spool", "the spool file \(upload.path) is not the blob it should be; remove the message with its attachment and send it again") }
            var next = state.committed
            var inFlight: [EventLoopFuture<WireRelayMessage>] = []
            progress?(.upload, state.committed, upload.size)
            while !state.complete {
                while inFlight.count < Self.partsInFlight && next < upload.size {
                    var chunk = WireBlobChunk()
                    chunk.blobID = declaration.blobID
                    chunk.offset = next
                    let data = try file.readPiece(upTo: Int(min(UInt64(Self.wirePartByteCount), upload.size - next)), at: next)
                    guard !data.isEmpty else { throw .failure("spool", "the spool file \(upload.path) ended early") }
                    chunk.data = Data(data)
                    inFlight.append(client.start(.blobChunk(chunk)))
                    next += UInt64(data.count)
                }
                guard !inFlight.isEmpty else { throw .failure("relay-protocol", "the relay has every byte of an attachment but did not say it is complete") }
                state = try checkedState(try await RelayClient.answer(inFlight.removeFirst()), upload)
                noteActivity()
                progress?(.upload, state.committed, upload.size)
            }
        }
        try messenger.uploadCompleted(upload)
    }

    private func checkedState(_ answer: WireRelayMessage, _ upload: Messenger.Upload) throws(ClientError) -> WireBlobState {
        guard case .blobState(let state) = answer.body, Array(state.blobID) == upload.blobID, state.size == upload.size, state.committed <= upload.size else {
            throw .failure("relay-protocol", "the relay answered an attachment upload with something else")
        }
        return state
    }

    // MARK: Download

    /// Fetches a received message's pending attachments; true when none is pending any more
    /// (so its envelope may be acknowledged). A blob not at the relay yet (still on its way
    /// between relays) stays pending until the message's relay expiry, then is missing.
    func fetchAttachments(of messageID: [UInt8], expiresAt: UInt64, now: UInt64) async throws(ClientError) -> Bool {
        let pending = try messenger.attachments(of: messageID).filter { $0.state == .pending }
        guard !pending.isEmpty else { return true }
        guard let home else { return false }
        try home.preparePrivateFolder(home.attachmentsPath)
        var done = true
        for attachment in pending {
            let blobID = attachment.reference.blobID
            switch try await download(attachment.reference, home: home) {
            case .stored:
                // Recorded before BlobFetched goes: at most one report per blob.
                try messenger.setAttachmentState(messageID: messageID, position: attachment.position, .stored)
                var fetched = WireBlobFetched()
                fetched.blobID = Data(blobID)
                try await client.post(.blobFetched(fetched))
            case .notYet where now >= expiresAt:
                try messenger.setAttachmentState(messageID: messageID, position: attachment.position, .missing)
                unlink(partialPath(blobID, home: home))
                report.notices.append("an attachment of message \(Hex.encode(messageID).prefix(8)) never reached the relay before the message expired: it is missing")
            case .notYet:
                done = false
            case .refused(let why):
                try messenger.setAttachmentState(messageID: messageID, position: attachment.position, .refused)
                report.notices.append("an attachment of message \(Hex.encode(messageID).prefix(8)) was refused and not kept: \(why)")
            }
        }
        if !done {
            report.notices.append("message \(Hex.encode(messageID).prefix(8)) waits for an attachment still on its way; the next sync fetches it")
        }
        return done
    }

    enum Download {
        case stored
        case notYet
        case refused(String)
    }

    private func partialPath(_ blobID: [UInt8], home: ValiseHome) -> String {
        home.attachmentsPath + "/" + Hex.encode(blobID) + ".partial"
    }

    /// Streams the blob into a private `.partial` file (resuming from its length), verifies
    /// all of it, then names it `<id>.blob`.
    private func download(_ reference: AttachmentReference, home: ValiseHome) async throws(ClientError) -> Download {
        guard reference.length <= BlobFormat.maximumFileLength else { return .refused("its stated length is impossible") }
        let final = home.receivedBlobPath(reference.blobID)
        let partial = partialPath(reference.blobID, home: home)
        let size = BlobFormat.blobSize(fileLength: reference.length)
        if SecureFile.exists(final) {
            // Kept by an earlier run that stopped before recording it: checked again.
            return try verified(final, reference) ? .stored : .refused("it does not match its reference")
        }
        var file: StreamFile
        var offset: UInt64 = 0
        if SecureFile.exists(partial) {
            (file, offset) = try StreamFile.openForAppending(partial)
            if offset > size {
                unlink(partial)
                (file, offset) = (try StreamFile.createExclusive(partial), 0)
            }
        } else {
            file = try StreamFile.createExclusive(partial)
        }
        var next = offset
        var inFlight: [(future: EventLoopFuture<WireRelayMessage>, offset: UInt64, length: UInt64)] = []
        progress?(.download, offset, size)
        while offset < size {
            while inFlight.count < Self.partsInFlight && next < size {
                var fetch = WireBlobFetch()
                fetch.blobID = Data(reference.blobID)
                fetch.offset = next
                let length = min(UInt64(Self.wirePartByteCount), size - next)
                fetch.length = UInt32(length)
                inFlight.append((client.start(.blobFetch(fetch)), next, length))
                next += length
            }
            let part = inFlight.removeFirst()
            let answer: WireRelayMessage
            do {
                answer = try await RelayClient.answer(part.future)
            } catch where error.code == "relay-\(WireErrorCode.noSuchBlob)" {
                try file.sync()
                return .notYet
            }
            guard case .blobData(let data) = answer.body, Array(data.blobID) == reference.blobID, data.offset == part.offset else {
                throw .failure("relay-protocol", "the relay answered an attachment fetch with something else")
            }
            guard data.size == size, UInt64(data.data.count) == part.length else {
                unlink(partial)
                return .refused("the relay holds a blob of another size")
            }
            try file.append([UInt8](data.data))
            offset += part.length
            noteActivity()
            progress?(.download, offset, size)
        }
        try file.sync()
        guard try verified(partial, reference) else {
            unlink(partial)
            return .refused("it does not decrypt, or does not match its length and hash (altered or truncated)")
        }
        guard rename(partial, final) == 0 else { throw StreamFile.failure("cannot write \(final)", errno) }
        do {
            try SecureFile.syncDirectory(home.attachmentsPath)
        } catch {
            throw ClientError(error)
        }
        return .stored
    }

    /// Whether the blob checks out; an error reading the file is an error, not a verdict.
    private func verified(_ path: String, _ reference: AttachmentReference) throws(ClientError) -> Bool {
        do {
            try AttachmentOpener.open(blobAt: path, reference: reference)
            return true
        } catch where error.code == AttachmentOpener.tamperedCode {
            return false
        }
    }
}
