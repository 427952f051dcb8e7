import Foundation
import ValiseStore
import ValiseWire

/// The blob lane of one outgoing relay link, without I/O (docs/PROTOCOL.md, "Blobs over
/// links"): which complete blob goes next to the peer, and what each BlobResult means. It
/// keeps at most ONE request (a BlobOffer or a BlobPart) in flight, and its owner
/// (`LinkSession`) asks it for work only while no envelope waits to be sent, so that an
/// envelope, FLASH above all, waits behind at most one part of `partBytes`.
///
/// Per blob: BlobOffer → CONTINUE{committed} → read `partBytes` at committed → BlobPart →
/// CONTINUE… → COMPLETE (the forward is done). PERMANENT ends the forward as well (the peer
/// will never take it); TEMPORARY, an error, or a read that finds nothing waits
/// `retryAfterTemporarySeconds` and offers again. A dropped link loses the lane with its
/// session: the next one offers again, and CONTINUE says where the peer's copy stands.
struct LinkBlobLane {
    /// Bytes in one BlobPart (the wire's chunk size, as for BlobChunk and BlobData).
    static let partBytes = 262_144

    struct Settings: Sendable {
        var retryAfterTemporarySeconds: UInt64 = 15
        /// Forwards loaded at once.
        var batch = 16
        /// A lane that found nothing looks in the store again after this long, in case a wake
        /// was lost (a blob completed by another node of a shared store, say).
        var rescanSeconds: UInt64 = 60
    }

    enum Action: Equatable, Sendable {
        /// Send this request about this blob (the owner gives it a request id).
        case send(BlobID, LinkLinkRequest.OneOf_Body)
        /// Load up to `limit` blob forwards for the peer, leaving out `excluding`, and hand
        /// them to `loaded(_:limit:now:)`.
        case load(excluding: Set<BlobID>, limit: Int)
        /// Read `length` bytes of the blob at `offset` and hand them to `read(_:offset:bytes:now:)`.
        case read(BlobID, offset: UInt64, length: Int)
        /// The forward is over (custody passed, or refused for good with `refused` saying
        /// why): `completeBlobForward`, then `completed(_:)`.
        case complete(BlobID, refused: String?)
        /// Something the operator should read; the lane goes on.
        case warn(String)
        /// The peer broke the protocol: the link closes.
        case close(String)
    }

    private enum Step: Equatable {
        /// Chosen; the offer waits for the lane to be free.
        case toOffer
        case offering
        case reading(offset: UInt64)
        /// Read; the part waits for the lane to be free.
        case toSend(offset: UInt64, bytes: [UInt8])
        case sending(offset: UInt64, end: UInt64)
    }

    private struct Current {
        let forward: BlobForward
        var step: Step
    }

    let peerName: String
    let settings: Settings
    private var current: Current?
    private var waiting: [BlobForward] = []
    /// Blobs refused for a time, and when each may go again.
    private(set) var deferred: [BlobID: UInt64] = [:]
    /// Forwards answered for good whose completion the store has not committed yet.
    private(set) var completing: Set<BlobID> = []
    private var loading = false
    /// The last load found less than it had room for, and nothing woke the lane since.
    private var caughtUp = false
    private var lastLoadAt: UInt64 = 0

    init(peerName: String, settings: Settings = Settings()) {
        self.peerName = peerName
        self.settings = settings
    }

    /// The blob whose request is on the wire, if any (at most one).
    var inFlight: BlobID? {
        switch current?.step {
        case .offering?, .sending?: current?.forward.id
        default: nil
        }
    }

    /// The blob being forwarded (offered, read, or sent), if any.
    var currentID: BlobID? { current?.forward.id }

    // MARK: Events

    /// Work for the lane, if it may send now (`mayGo`: the link is up and no envelope waits).
    mutating func pump(mayGo: Bool, now: UInt64) -> [Action] {
        guard mayGo, inFlight == nil else { return [] }
        if current == nil {
            waiting.removeAll { $0.expiresAt <= now || deferred[$0.id] != nil || completing.contains($0.id) }
            guard !waiting.isEmpty else {
                guard !loading, !caughtUp else { return [] }
                loading = true
                return [.load(excluding: Set(deferred.keys).union(completing), limit: settings.batch)]
            }
            current = Current(forward: waiting.removeFirst(), step: .toOffer)
        }
        guard let chosen = current else { return [] }
        switch chosen.step {
        case .toOffer:
            // Durations, never clock readings: the relays' clocks may disagree.
            guard chosen.forward.expiresAt > now else {
                // Expired while it waited: never offered (the expiry sweep deletes it).
                current = nil
                return pump(mayGo: mayGo, now: now)
            }
            var offer = LinkBlobOffer()
            offer.blobID = Data(chosen.forward.id.bytes)
            offer.size = chosen.forward.size
            offer.remainingSeconds = chosen.forward.expiresAt - now
            offer.fetches = chosen.forward.fetches
            current?.step = .offering
            return [.send(chosen.forward.id, .blobOffer(offer))]
        case .toSend(let offset, let bytes):
            var part = LinkBlobPart()
            part.blobID = Data(chosen.forward.id.bytes)
            part.offset = offset
            part.data = Data(bytes)
            current?.step = .sending(offset: offset, end: offset + UInt64(bytes.count))
            return [.send(chosen.forward.id, .blobPart(part))]
        case .offering, .reading, .sending:
            return []
        }
    }

    /// Blob forwards loaded for a `.load` action.
    mutating func loaded(_ forwards: [BlobForward], limit: Int, now: UInt64) {
        loading = false
        lastLoadAt = now
        let known = Set(waiting.map(\.id)).union(current.map { [$0.forward.id] } ?? [])
        waiting += forwards.filter { !known.contains($0.id) && deferred[$0.id] == nil && !completing.contains($0.id) }
        caughtUp = forwards.count < limit
    }

    /// The load failed: the lane tries again at its next rescan.
    mutating func loadFailed(now: UInt64) {
        loading = false
        lastLoadAt = now
        caughtUp = true
    }

    /// A blob completed here with a forward to this peer (or one was given back).
    mutating func wake() {
        caughtUp = false
    }

    /// The peer's answer to the request in flight for `id` (a BlobResult, or a LinkError).
    mutating func answered(_ id: BlobID, _ reply: LinkLinkReply, now: UInt64) -> [Action] {
        guard let chosen = current, chosen.forward.id == id, inFlight == id else {
            return [.close("relay \(peerName) answered a blob request that is not outstanding")]
        }
        let forward = chosen.forward
        guard case .blobResult(let result)? = reply.body else {
            if case .error(let error)? = reply.body {
                // Not taken now (an older relay, a failing store): offered again later.
                postpone(id, now: now)
                return [.warn("relay \(peerName) refused a blob request: \(error.message.prefix(256))")]
            }
            return [.close("relay \(peerName) answered a blob request with something other than a BlobResult")]
        }
        guard result.blobID == Data(id.bytes) else {
            return [.close("relay \(peerName) answered a blob request for another blob")]
        }
        switch result.outcome {
        case .complete:
            current = nil
            completing.insert(id)
            return [.complete(id, refused: nil)]
        case .continue:
            guard result.committed < forward.size else {
                // The peer holds every byte yet does not say COMPLETE: a later offer asks again.
                postpone(id, now: now)
                return [.warn("relay \(peerName) answered CONTINUE past blob \(id)'s size")]
            }
            let length = Int(min(UInt64(Self.partBytes), forward.size - result.committed))
            current?.step = .reading(offset: result.committed)
            return [.read(id, offset: result.committed, length: length)]
        case .temporary:
            postpone(id, now: now)
            return []
        case .permanent:
            current = nil
            completing.insert(id)
            return [.complete(id, refused: Self.describe(result.reason))]
        case .unspecified, .UNRECOGNIZED:
            return [.close("relay \(peerName) answered a blob request with an unknown outcome")]
        }
    }

    /// Bytes read for a `.read` action; nil or empty when the blob is no longer held here
    /// (expired, or deleted in between): it is left for a while, and the store decides.
    mutating func read(_ id: BlobID, offset: UInt64, bytes: [UInt8]?, now: UInt64) -> [Action] {
        guard let chosen = current, chosen.forward.id == id, chosen.step == .reading(offset: offset) else { return [] }
        guard let bytes, !bytes.isEmpty, bytes.count <= Self.partBytes, offset + UInt64(bytes.count) <= chosen.forward.size else {
            postpone(id, now: now)
            return []
        }
        current?.step = .toSend(offset: offset, bytes: bytes)
        return []
    }

    /// The store recorded these forwards as done (or failed to: then they may be loaded
    /// again, and the peer answers COMPLETE at once).
    mutating func completed(_ id: BlobID) {
        completing.remove(id)
    }

    /// Once a second or so: deferred blobs whose wait is over may go again, and a lane that
    /// found nothing looks again after `rescanSeconds`.
    mutating func tick(now: UInt64) {
        let due = deferred.filter { $0.value <= now }.map(\.key)
        if !due.isEmpty {
            for id in due { deferred[id] = nil }
            caughtUp = false
        }
        if caughtUp, now >= lastLoadAt + settings.rescanSeconds { caughtUp = false }
    }

    // MARK: Internals

    private mutating func postpone(_ id: BlobID, now: UInt64) {
        if current?.forward.id == id { current = nil }
        deferred[id] = now + settings.retryAfterTemporarySeconds
    }

    static func describe(_ reason: LinkBlobResult.Reason) -> String {
        switch reason {
        case .badBlob: "the blob is out of the peer's bounds"
        case .blobMismatch: "the bytes did not hash to the blob's id there"
        case .storageFull: "the peer's blob storage is full"
        case .notOffered: "the peer does not hold the blob"
        case .unspecified, .UNRECOGNIZED: "no reason given"
        }
    }
}
