public enum PrekeyLimits {
    /// One-time prekeys a device may have on the relay at once (and so send in one upload).
    public static let maximumOneTimePrekeys = 200
}

/// A device's published keys for starting sessions with it (docs/PROTOCOL.md,
/// "End-to-end"): its signed prekey and envelope key, each with the identity key's
/// signature, which the relay checks against the directory before storing them.
public struct StoredPrekeys: Sendable, Equatable {
    public let signedPrekey: [UInt8]
    public let signedPrekeySignature: [UInt8]
    /// The X-Wing envelope key (1,216 bytes) and its signature (purpose `xwing-envelope-key`).
    public let envelopeKey: [UInt8]
    public let envelopeKeySignature: [UInt8]
    /// When the relay stored them (its clock).
    public let updatedAt: UInt64

    public init(signedPrekey: [UInt8], signedPrekeySignature: [UInt8], envelopeKey: [UInt8], envelopeKeySignature: [UInt8], updatedAt: UInt64) {
        self.signedPrekey = signedPrekey
        self.signedPrekeySignature = signedPrekeySignature
        self.envelopeKey = envelopeKey
        self.envelopeKeySignature = envelopeKeySignature
        self.updatedAt = updatedAt
    }

    /// An X-Wing public key's length (the relay has parsed it before it gets here).
    public static let envelopeKeyByteCount = 1216

    var isWellFormed: Bool {
        signedPrekey.count == 32 && signedPrekeySignature.count == 64 && envelopeKey.count == Self.envelopeKeyByteCount && envelopeKeySignature.count == 64
    }
}

/// What a fetch hands out: the published keys and at most one one-time prekey, which no
/// other fetch will ever get.
public struct PrekeyBundleRecord: Sendable, Equatable {
    public let prekeys: StoredPrekeys
    public let oneTimePrekey: [UInt8]?
    /// One-time prekeys left after this one, so the owner can be told to replenish.
    public let oneTimePrekeysLeft: Int
}

/// Where the relay keeps prekeys. Every change is committed durably before it returns; a
/// one-time prekey is deleted in the same transaction that hands it out, so a crash can
/// never give it to two senders.
public protocol PrekeyStore: Sendable {
    /// Replaces the mailbox's signed prekey and envelope key and adds `oneTimePrekeys`
    /// (32 bytes each; ones already held are ignored). Refuses, changing nothing, if the
    /// device would hold more than `PrekeyLimits.maximumOneTimePrekeys`. Returns how many
    /// it holds.
    func storePrekeys(mailbox: Mailbox, prekeys: StoredPrekeys, oneTimePrekeys: [[UInt8]]) throws(StoreError) -> Int

    /// Each mailbox's bundle, in order, all in one transaction; nil for a device that has
    /// published nothing. Where a mailbox has a one-time prekey left, `takeOneTimePrekey`
    /// is asked (with the mailbox's index) whether this fetch may have it; if so, it is
    /// deleted in the same transaction. Without `takeOneTimePrekey`, nothing is taken (a
    /// read, no commit).
    func takeBundles(_ mailboxes: [Mailbox], takeOneTimePrekey: ((Int) -> Bool)?) throws(StoreError) -> [PrekeyBundleRecord?]

    func oneTimePrekeyCount(mailbox: Mailbox) throws(StoreError) -> Int
}

extension PrekeyStore {
    /// The mailbox's bundle, taking one one-time prekey if any is left; nil if the device
    /// has published nothing.
    public func takeBundle(mailbox: Mailbox) throws(StoreError) -> PrekeyBundleRecord? {
        try takeBundles([mailbox]) { _ in true }[0]
    }
}
