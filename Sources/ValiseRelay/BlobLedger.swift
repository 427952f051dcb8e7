import NIOConcurrencyHelpers
import ValiseCrypto
import ValiseStore

/// Bytes of blobs each device uploaded that the relay still holds, for
/// queue.maxBlobBytesPerDevice. In memory only, never on disk: a seized disk must not tie a
/// blob to its uploader. A restart forgets it (docs/SECURITY.md), so after one a device may
/// upload up to its quota again while its earlier blobs are still held; the relay's total
/// (queue.maxBlobStoreBytes, counted by the store) still bounds them all.
final class BlobLedger: Sendable {
    struct Entry: Sendable {
        let size: UInt64
        var expiresAt: UInt64
        var complete: Bool
    }

    enum Charge: Equatable {
        /// Newly charged to the device.
        case charged
        /// Already charged to it (an upload resumed or repeated).
        case held
        /// It would take the device past its quota: nothing charged.
        case overQuota
    }

    let limit: UInt64
    private let devices = NIOLockedValueBox<[AgreementPublicKey: [BlobID: Entry]]>([:])

    init(limit: UInt64) {
        self.limit = limit
    }

    /// Charges a blob's size to the device that uploads it, unless that takes it past `limit`.
    func charge(_ device: AgreementPublicKey, id: BlobID, size: UInt64, expiresAt: UInt64) -> Charge {
        devices.withLockedValue { devices in
            var blobs = devices[device] ?? [:]
            if blobs[id] != nil { return .held }
            let used = blobs.values.reduce(0) { $0 + $1.size }
            guard size <= limit, used <= limit - size else { return .overQuota }
            blobs[id] = Entry(size: size, expiresAt: expiresAt, complete: false)
            devices[device] = blobs
            return .charged
        }
    }

    /// Takes back a charge whose upload failed before the store took the blob.
    func uncharge(_ device: AgreementPublicKey, id: BlobID) {
        devices.withLockedValue { devices in
            devices[device]?[id] = nil
            if devices[device]?.isEmpty == true { devices[device] = nil }
        }
    }

    /// The store holds the blob until `expiresAt` (an upload resumed keeps the expiry it was
    /// declared with): its charges go at that time at the latest.
    func expires(_ id: BlobID, at expiresAt: UInt64) {
        devices.withLockedValue { devices in
            for device in devices.keys { devices[device]?[id]?.expiresAt = expiresAt }
        }
    }

    /// The blob is complete: from now on only its fetches, forwards or expiry delete it.
    func completed(_ id: BlobID) {
        devices.withLockedValue { devices in
            for device in devices.keys where devices[device]?[id] != nil { devices[device]?[id]?.complete = true }
        }
    }

    /// The store deleted the blob (its last fetch, a mismatch): every charge for it goes.
    func release(_ id: BlobID) {
        devices.withLockedValue { devices in
            for device in Array(devices.keys) {
                devices[device]?[id] = nil
                if devices[device]?.isEmpty == true { devices[device] = nil }
            }
        }
    }

    /// Drops charges for blobs that expired, and for complete blobs the store no longer holds
    /// (deleted after their last forward: `isHeld` asks the store). Returns how many went.
    @discardableResult
    func sweep(now: UInt64, isHeld: (BlobID) -> Bool) -> Int {
        let complete = devices.withLockedValue { devices in
            Set(devices.values.flatMap { $0.filter { $0.value.complete && $0.value.expiresAt > now }.keys })
        }
        // Asked outside the lock: the store's calls block.
        let gone = complete.filter { !isHeld($0) }
        return devices.withLockedValue { devices in
            var dropped = 0
            for device in Array(devices.keys) {
                let before = devices[device]?.count ?? 0
                devices[device] = devices[device]?.filter { $0.value.expiresAt > now && !gone.contains($0.key) }
                dropped += before - (devices[device]?.count ?? 0)
                if devices[device]?.isEmpty == true { devices[device] = nil }
            }
            return dropped
        }
    }

    /// Bytes charged to the device.
    func bytes(of device: AgreementPublicKey) -> UInt64 {
        devices.withLockedValue { $0[device]?.values.reduce(0) { $0 + $1.size } ?? 0 }
    }
}
