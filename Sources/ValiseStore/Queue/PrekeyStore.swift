import ValiseCrypto

public enum PrekeyLimits {
    /// One-time prekeys a device may have on the relay at once (and so send in one upload).
    public static let maximumOneTimePrekeys = 200
    /// One-time KEM prekeys (ML-KEM-1024, 1568 bytes each) a device may have on the relay at
    /// once: at most about 160 KiB with their signatures.
    public static let maximumOneTimeKEMPrekeys = 100
    /// An ML-KEM-1024 encapsulation key's length (1568).
    public static let kemPrekeyByteCount = MLKEM1024Scheme.parameters.publicKeyByteCount
}

/// An ML-KEM-1024 prekey as the relay keeps it: the key and the identity key's signature
/// (docs/PROTOCOL.md, "PQXDH"), checked against the directory before it is stored.
public struct StoredKEMPrekey: Sendable, Hashable {
    public let key: [UInt8]
    public let signature: [UInt8]

    public init(key: [UInt8], signature: [UInt8]) {
        self.key = key
        self.signature = signature
    }

    var isWellFormed: Bool { key.count == PrekeyLimits.kemPrekeyByteCount && signature.count == 64 }
}

/// How many one-time prekeys of each kind a device has on the relay.
public struct PrekeyCounts: Sendable, Equatable {
    public let oneTime: Int
    public let oneTimeKEM: Int

    public init(oneTime: Int, oneTimeKEM: Int) {
        self.oneTime = oneTime
        self.oneTimeKEM = oneTimeKEM
    }
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

    /// An X-Wing public key's length, 1216 (the relay has parsed it before it gets here).
    public static let envelopeKeyByteCount = XWingScheme.parameters.publicKeyByteCount

    var isWellFormed: Bool {
        signedPrekey.count == 32 && signedPrekeySignature.count == 64 && envelopeKey.count == Self.envelopeKeyByteCount && envelopeKeySignature.count == 64
    }
}

/// What a fetch hands out: the published keys, at most one one-time prekey of each kind,
/// which no other fetch will ever get, and otherwise the last-resort KEM prekey.
public struct PrekeyBundleRecord: Sendable, Equatable {
    public let prekeys: StoredPrekeys
    public let oneTimePrekey: [UInt8]?
    /// One-time prekeys left after this one, so the owner can be told to replenish.
    public let oneTimePrekeysLeft: Int
    /// A one-time KEM prekey, or the last-resort one; nil for a device that published none
    /// (no session can start with it).
    public let kemPrekey: StoredKEMPrekey?
    public let kemPrekeyIsLastResort: Bool
    public let oneTimeKEMPrekeysLeft: Int

    public init(
        prekeys: StoredPrekeys, oneTimePrekey: [UInt8]?, oneTimePrekeysLeft: Int, kemPrekey: StoredKEMPrekey?, kemPrekeyIsLastResort: Bool,
        oneTimeKEMPrekeysLeft: Int
    ) {
        self.prekeys = prekeys
        self.oneTimePrekey = oneTimePrekey
        self.oneTimePrekeysLeft = oneTimePrekeysLeft
        self.kemPrekey = kemPrekey
        self.kemPrekeyIsLastResort = kemPrekeyIsLastResort
        self.oneTimeKEMPrekeysLeft = oneTimeKEMPrekeysLeft
    }
}

/// Where the relay keeps prekeys. Every change is committed durably before it returns; a
/// one-time prekey is deleted in the same transaction that hands it out, so a crash can
/// never give it to two senders.
public protocol PrekeyStore: Sendable {
    /// Replaces the mailbox's signed prekey, envelope key and last-resort KEM prekey and adds
    /// `oneTimePrekeys` (32 bytes each) and `oneTimeKEMPrekeys` (ones already held are
    /// ignored). Refuses, changing nothing, if the device would hold more than
    /// `PrekeyLimits.maximumOneTimePrekeys` or `.maximumOneTimeKEMPrekeys`. Returns how
    /// many of each it holds.
    func storePrekeys(
        mailbox: Mailbox, prekeys: StoredPrekeys, oneTimePrekeys: [[UInt8]], lastResortKEMPrekey: StoredKEMPrekey, oneTimeKEMPrekeys: [StoredKEMPrekey]
    ) throws(StoreError) -> PrekeyCounts

    /// Each mailbox's bundle, in order, all in one transaction; nil for a device that has
    /// published nothing. Where a mailbox has a one-time prekey of either kind left,
    /// `takeOneTimePrekey` is asked (with the mailbox's index) whether this fetch may have
    /// them; if so, the oldest of each kind is deleted in the same transaction (else the
    /// bundle carries the last-resort KEM prekey). Without `takeOneTimePrekey`, nothing is
    /// taken (a read, no commit).
    func takeBundles(_ mailboxes: [Mailbox], takeOneTimePrekey: ((Int) -> Bool)?) throws(StoreError) -> [PrekeyBundleRecord?]

    func oneTimePrekeyCount(mailbox: Mailbox) throws(StoreError) -> Int

    func oneTimeKEMPrekeyCount(mailbox: Mailbox) throws(StoreError) -> Int

    /// Deletes, in one transaction, every prekey (of all kinds) of each mailbox whose signed
    /// prekeys `current` does not own, or that holds one-time prekeys without them; where
    /// they are owned and `current.kemPrekey` is given, each KEM prekey it does not own.
    /// Returns the mailboxes that lost all their prekeys.
    func deleteStalePrekeys(_ mailboxes: [Mailbox], current: PrekeyOwnership) throws(StoreError) -> [Mailbox]
}

/// Which stored prekeys a mailbox's member's current identity key signed. The store cannot
/// tell on its own: the signatures' purposes belong to the session layer, and the identity
/// key to the directory.
public struct PrekeyOwnership: Sendable {
    public let signedPrekeys: @Sendable (Mailbox, StoredPrekeys) -> Bool
    /// Checks one KEM prekey; nil checks none (a check per mailbox, not per key, as at the
    /// relay's start: one-time KEM prekeys go out only with the signed prekeys of their upload).
    public let kemPrekey: (@Sendable (Mailbox, StoredKEMPrekey, _ lastResort: Bool) -> Bool)?

    public init(
        signedPrekeys: @escaping @Sendable (Mailbox, StoredPrekeys) -> Bool,
        kemPrekey: (@Sendable (Mailbox, StoredKEMPrekey, _ lastResort: Bool) -> Bool)?
    ) {
        self.signedPrekeys = signedPrekeys
        self.kemPrekey = kemPrekey
    }
}

extension PrekeyStore {
    /// Checks an upload's lengths, as every store does before it changes anything.
    public static func checkLengths(
        prekeys: StoredPrekeys, oneTimePrekeys: [[UInt8]], lastResortKEMPrekey: StoredKEMPrekey, oneTimeKEMPrekeys: [StoredKEMPrekey]
    ) throws(StoreError) {
        guard prekeys.isWellFormed, oneTimePrekeys.allSatisfy({ $0.count == 32 }), lastResortKEMPrekey.isWellFormed,
              oneTimeKEMPrekeys.allSatisfy(\.isWellFormed)
        else {
            throw StoreError(.failure, "cannot store prekeys: a key or signature has the wrong length")
        }
    }

    /// The mailbox's bundle, taking one one-time prekey if any is left; nil if the device
    /// has published nothing.
    public func takeBundle(mailbox: Mailbox) throws(StoreError) -> PrekeyBundleRecord? {
        try takeBundles([mailbox]) { _ in true }[0]
    }
}
