import Foundation
import Logging
import Synchronization
import Testing
import ValiseCrypto
@testable import ValiseRelay
import ValiseStore
import ValiseTestSupport
import ValiseWire

/// The per-device blob quota, kept in memory (`BlobLedger`), and the expiry sweep's part for
/// blobs, on a manual clock.
@Suite("Relay: blob quota per device and blob expiry")
struct BlobLedgerTests {
    let device = AgreementPrivateKey().publicKey
    let other = AgreementPrivateKey().publicKey

    func id(_ n: UInt8) -> BlobID { BlobID(bytes: [UInt8](repeating: n, count: 32))! }

    @Test("a device is charged each blob once, up to its limit; release and expiry give room back")
    func charges() {
        let ledger = BlobLedger(limit: 1000)
        #expect(ledger.charge(device, id: id(1), size: 600, expiresAt: 100) == .charged)
        #expect(ledger.charge(device, id: id(1), size: 600, expiresAt: 100) == .held)
        #expect(ledger.charge(device, id: id(2), size: 401, expiresAt: 200) == .overQuota)
        #expect(ledger.charge(device, id: id(2), size: 400, expiresAt: 200) == .charged)
        #expect(ledger.charge(other, id: id(3), size: 1000, expiresAt: 200) == .charged)
        #expect(ledger.charge(other, id: id(4), size: UInt64.max, expiresAt: 200) == .overQuota)
        #expect(ledger.bytes(of: device) == 1000)
        ledger.uncharge(device, id: id(2))
        #expect(ledger.bytes(of: device) == 600)
        // Expired at 100: gone at the sweep, whatever the store says.
        #expect(ledger.sweep(now: 100) { _ in true } == 1)
        #expect(ledger.bytes(of: device) == 0)
        // A complete blob the store no longer holds (its last forward done) goes too; an
        // incomplete one stays until its expiry.
        ledger.completed(id(3))
        #expect(ledger.charge(device, id: id(5), size: 10, expiresAt: 300) == .charged)
        #expect(ledger.sweep(now: 150) { _ in false } == 1)
        #expect(ledger.bytes(of: other) == 0 && ledger.bytes(of: device) == 10)
        ledger.release(id(5))
        #expect(ledger.bytes(of: device) == 0)
    }

    @Test("the expiry sweep deletes expired blobs, complete or not, and the device's quota is free again")
    func expiry() throws {
        let folder = TemporaryDirectory()
        let store = try SQLiteBlobStore(path: folder.file("blobs.sqlite"), durability: .os)
        let clock = Mutex<UInt64>(1_800_000_000)
        var queue = RelayConfiguration.Queue()
        queue.maximumBlobBytesPerDevice = 1500
        let blobs = RelayBlobs(
            store: store, queue: queue, freeSpace: { nil }, clock: { clock.withLock { $0 } }, logger: Logger(label: "test"))
        let lane = RelayBlobs.BlobLane()
        let bytes = [UInt8](repeating: 9, count: 1000)
        let complete = BlobID(bytes: BLAKE2b.hash(bytes, outputByteCount: 32))!
        let request = RelayRequestProcessor.BlobUploadRequest(id: complete, size: 1000, ttl: .hour, fetches: 2, forwards: [:])
        _ = try blobs.upload(request, requestID: 1, device: device, lane: lane)
        guard case .blobState(let state)? = try blobs.chunk(complete, offset: 0, bytes: bytes, requestID: 2, lane: lane).body else {
            Issue.record("no BlobState")
            return
        }
        #expect(state.complete && state.expiresAt == 1_800_000_000 + 3600)
        let partial = RelayRequestProcessor.BlobUploadRequest(id: id(7), size: 500, ttl: .day, fetches: 1, forwards: [:])
        _ = try blobs.upload(partial, requestID: 3, device: device, lane: lane)
        // 1500 held for this device: a third is refused.
        let third = RelayRequestProcessor.BlobUploadRequest(id: id(8), size: 1, ttl: .day, fetches: 1, forwards: [:])
        guard case .error(let refusal)? = try blobs.upload(third, requestID: 4, device: device, lane: lane).body else {
            Issue.record("not refused")
            return
        }
        #expect(refusal.code == .blobQuota)

        clock.withLock { $0 += 3600 }
        blobs.expire()
        #expect(try store.blob(id: complete, now: clock.withLock { $0 }) == nil)
        #expect(blobs.ledger.bytes(of: device) == 500)
        clock.withLock { $0 += 86_400 }
        blobs.expire()
        #expect(try store.blobStatistics(now: clock.withLock { $0 }) == BlobStatistics())
        #expect(blobs.ledger.bytes(of: device) == 0)
        guard case .blobState? = try blobs.upload(third, requestID: 5, device: device, lane: lane).body else {
            Issue.record("refused after expiry")
            return
        }
    }
}
