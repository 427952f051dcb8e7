import NIOConcurrencyHelpers
import NIOCore
import ValiseCrypto
import ValiseDirectory

/// Who may take one of a member's one-time prekeys now. A device gets at most one of a
/// member's an hour (a session needs one; a device that keeps asking for the same member
/// is draining it), and at most so many in all (`limits.oneTimePrekeysPerMinute` and its
/// burst, counted per device key across its connections). A fetch refused here still gets
/// the bundle, without a one-time prekey: PQXDH works without one (with the last-resort KEM prekey).
///
/// The (device, member) table is in memory, bounded: entries expire an hour after the
/// handout and at most `capacity` are held. When it is full, nobody gets a one-time prekey
/// until entries expire (the safe side: bundles still go out). A relay restart forgets it,
/// which gives each device at most one more per member.
final class OneTimePrekeyAllowance: Sendable {
    enum Grant: Equatable {
        /// Take one: the (device, member) entry is made and a token taken.
        case granted
        /// This device had one of this member's within the hour.
        case alreadyHanded
        /// This device is past its rate of one-time prekeys.
        case deviceRate
        /// The table is at its capacity.
        case tableFull
    }

    private struct Key: Hashable {
        let device: AgreementPublicKey
        let member: MemberName
    }

    private struct Table {
        /// When each entry expires (nanoseconds, the monotonic clock).
        var expiries: [Key: UInt64] = [:]
        /// The same entries in the order they were made, which is their order of expiry
        /// (every entry lives exactly `window`).
        var order = CircularBuffer<(key: Key, expires: UInt64)>()

        mutating func expire(now: UInt64) {
            while let first = order.first, first.expires <= now {
                order.removeFirst()
                // A released entry may have been made again since: only its own expiry ends it.
                if expiries[first.key] == first.expires { expiries.removeValue(forKey: first.key) }
            }
        }
    }

    /// How long a device waits for another of the same member's: an hour.
    static let window: UInt64 = 3_600 * 1_000_000_000
    /// Entries held at most: about 150 bytes each, so some 15 MiB when full; 100,000 handouts
    /// in an hour is far beyond what an organisation starts (a thousand devices each
    /// starting a hundred sessions).
    static let defaultCapacity = 100_000

    private let table = NIOLockedValueBox(Table())
    private let devices: DeviceRateLimiter
    private let capacity: Int
    private let clock: @Sendable () -> UInt64

    /// `perMinute` one-time prekeys a device may take a minute, `burst` at once; `clock` in
    /// nanoseconds (monotonic), shared with the device buckets; tests pass their own.
    init(perMinute: Double, burst: Int, capacity: Int = OneTimePrekeyAllowance.defaultCapacity,
         clock: @escaping @Sendable () -> UInt64 = { NIODeadline.now().uptimeNanoseconds }) {
        self.devices = DeviceRateLimiter(perSecond: perMinute / 60, burst: Double(burst), clock: clock)
        self.capacity = capacity
        self.clock = clock
    }

    /// Whether `device` may take one of `member`'s one-time prekeys now (asked only when the
    /// member has one to give); `.granted` records it and takes one of the device's tokens.
    func reserve(device: AgreementPublicKey, member: MemberName) -> Grant {
        let now = clock()
        return table.withLockedValue { table in
            table.expire(now: now)
            let key = Key(device: device, member: member)
            if table.expiries[key] != nil { return .alreadyHanded }
            guard table.expiries.count < capacity else { return .tableFull }
            guard devices.allow(device) else { return .deviceRate }
            table.expiries[key] = now &+ Self.window
            table.order.append((key, now &+ Self.window))
            return .granted
        }
    }

    /// Gives back a grant whose one-time prekey was never handed out (the store's
    /// transaction failed), so the device is not kept from that member's for an hour. The
    /// device's token is not refunded: a failing store is no reason to fetch faster.
    func release(device: AgreementPublicKey, member: MemberName) {
        _ = table.withLockedValue { $0.expiries.removeValue(forKey: Key(device: device, member: member)) }
    }

    /// Entries held now (for tests).
    var count: Int {
        let now = clock()
        return table.withLockedValue { table in
            table.expire(now: now)
            return table.expiries.count
        }
    }
}
