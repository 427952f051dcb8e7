import NIOCore
import ValiseDirectory
import ValiseStore
import ValiseWire

extension RelayConnectionHandler {
    /// Stores a checked upload off the event loop and answers with the counts held.
    func storePrekeys(
        requestID: UInt64, mailbox: Mailbox, prekeys: StoredPrekeys, oneTime: [[UInt8]], kem: KEMPrekeyUpload, context: ChannelHandlerContext
    ) {
        let (store, shared) = (shared.prekeys, shared)
        answerOffLoop(requestID: requestID, context: context, failure: "could not store prekeys") { () throws -> WireRelayMessage in
            do {
                let counts = try store.storePrekeys(
                    mailbox: mailbox, prekeys: prekeys, oneTimePrekeys: oneTime, lastResortKEMPrekey: kem.lastResort, oneTimeKEMPrekeys: kem.oneTime)
                // Checked against the directory before a rotation took effect, they may have
                // landed after the rotation's deletion: now stored, they are checked again.
                if !shared.directory.prekeyOwnership(checkingKEMPrekeys: false).signedPrekeys(mailbox, prekeys),
                   let name = try? MemberName(mailbox.name) {
                    shared.onMembersRotated([name])
                }
                return RelayRequestProcessor.prekeysStored(requestID, counts: counts)
            } catch let error as StoreError where error.kind == .limitReached {
                return RelayRequestProcessor.error(requestID, RelayError(.tooLarge, code: "too-many-prekeys", message: error.message))
            }
        }
    }
}
