import NIOCore
public import ValiseCrypto
public import ValiseDirectory
import ValiseStore

/// A device opened for messaging: the keystore unlocked and brought in line with the
/// directory, the message store open. What every messaging command starts from.
public struct DeviceSession: Sendable {
    public let home: ValiseHome
    public let keystore: DeviceKeystore
    public let identity: DeviceIdentity
    public let organisation: PinnedOrganisation.Loaded
    /// Whether this opening completed the device's own key rotation.
    public let rotationCompleted: Bool

    /// The directory says this device was revoked: its keys were wiped.
    public static func revokedError(sequence: UInt64, reason: String) -> ClientError {
        ClientError(
            kind: .verification, code: "device-revoked",
            message: "the organisation revoked this device (directory entry \(sequence): \(reason)). Its keys have been wiped from this computer, and messages it received can no longer be read. Ask your key administrator to enroll a new device")
    }

    /// Unlocks the device with what `unlock` returns (a passphrase, or the agent's copy),
    /// reconciles its keys with `organisation`, and wipes everything if the directory shows
    /// the device revoked.
    public static func open(
        home: ValiseHome, organisation: PinnedOrganisation.Loaded, unlocked: UnlockedDevice, now: UInt64,
        receiptDelay: ClosedRange<UInt64> = Messenger.defaultReceiptDelay
    ) throws(ClientError) -> (session: DeviceSession, messenger: Messenger) {
        let keystore = DeviceKeystore(home: home)
        let (identity, reconciled) = try unlocked.reconciled(with: organisation.state, now: now)
        let session = DeviceSession(home: home, keystore: keystore, identity: identity, organisation: organisation, rotationCompleted: reconciled && identity.pending == nil && unlocked.identity.pending != nil)
        let messenger = try Messenger(home: home, identity: identity, directory: organisation, receiptDelay: receiptDelay)
        if let revoked = messenger.ownRevocation {
            try messenger.wipeKeys()
            messenger.store.close()
            try keystore.wipe()
            throw revokedError(sequence: revoked.sequence, reason: revoked.reason)
        }
        return (session, messenger)
    }

    /// Connects to the organisation's relay with this device's transport key (or, when the
    /// relay does not know it and a rotation is pending, the new one), refreshes the
    /// directory from it, and runs `body` with the connection.
    public static func connect<T: Sendable>(
        home: ValiseHome, identity: DeviceIdentity, target: DirectorySync.Target, timeoutSeconds: Int64 = 10,
        _ body: (RelayClient, DirectorySync.Welcome) async throws(ClientError) -> T
    ) async throws(ClientError) -> T {
        let timeout = TimeAmount.seconds(timeoutSeconds)
        do {
            return try await DirectorySync.withRelay(target, clientKey: identity.transportKey, timeout: timeout, body)
        } catch where error.code == "relay-notAdmitted" && identity.pending != nil {
            return try await DirectorySync.withRelay(target, clientKey: identity.pending!.keys.transport, timeout: timeout, body)
        }
    }

    /// Fetches what the relay has beyond the pinned directory, verifies and pins it.
    public static func refreshDirectory(_ client: RelayClient, home: ValiseHome, pinned: PinnedOrganisation.Loaded, now: UInt64) async throws(ClientError) -> PinnedOrganisation.Loaded {
        let fetched = try await DirectorySync.fetch(client, since: pinned.verifier.count)
        guard !fetched.entries.isEmpty || fetched.checkpoint != nil else { return pinned }
        let bundle = OrganisationBundle(entries: pinned.bundle.entries + fetched.entries, checkpoint: fetched.checkpoint ?? pinned.bundle.checkpoint)
        let organisation = PinnedOrganisation(home: home)
        _ = try organisation.pin(bundle, expectedGenesis: nil, now: now, file: "the relay's directory")
        return try organisation.load(now: now)
    }
}

/// A device keystore's contents, unlocked once, and how to save them again.
public struct UnlockedDevice: Sendable {
    public let identity: DeviceIdentity
    let saver: @Sendable (DeviceIdentity) throws(ClientError) -> Void

    public init(identity: DeviceIdentity, save: @escaping @Sendable (DeviceIdentity) throws(ClientError) -> Void) {
        self.identity = identity
        self.saver = save
    }

    func save(_ identity: DeviceIdentity) throws(ClientError) { try saver(identity) }

    /// The keys brought in line with the directory (the keys of a rotation it now shows
    /// become current; retired keys past their retention go), saved when that changed them
    /// or when the store key is new; and whether a rotation or retirement happened.
    public func reconciled(with directory: DirectoryState?, now: UInt64) throws(ClientError) -> (identity: DeviceIdentity, changed: Bool) {
        var identity = self.identity
        let changed = identity.reconcile(with: directory?.members[identity.memberName], now: now)
        if changed || identity.storeKeyIsNew {
            try save(identity)
            identity.storeKeyIsNew = false
        }
        return (identity, changed)
    }

    /// Unlocks with a passphrase; saving rewrites the keystore under the same passphrase
    /// and parameters (under the home's lock).
    public static func unlock(home: ValiseHome, passphrase: SecretBytes) throws(ClientError) -> UnlockedDevice {
        let keystore = DeviceKeystore(home: home)
        let (identity, header) = try keystore.unlock(passphrase: passphrase)
        return UnlockedDevice(identity: identity) { (changed: DeviceIdentity) throws(ClientError) in
            try keystore.save(changed, passphrase: passphrase, parameters: header.parameters)
        }
    }
}
