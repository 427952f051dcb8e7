import Dispatch
import Logging
import ValiseStore

extension RelayServer {
    /// Deletes the prekeys of rotated members that their old identity key signed, through
    /// the writer, and returns once they are gone, so that the publisher hears only then;
    /// queued envelopes stay (the member's device keeps the old envelope key to read mail
    /// sealed before the rotation). Blocks: call it off the event loops and the writer.
    static func deleteRotatedPrekeys(_ mailboxes: [Mailbox], directory: RelayDirectory, writer: GroupCommitWriter, logger: Logger) {
        let done = DispatchSemaphore(value: 0)
        writer.deleteStalePrekeys(mailboxes, current: directory.prekeyOwnership(checkingKEMPrekeys: true)) { result in
            report(result, logger: logger)
            done.signal()
        }
        done.wait()
    }

    /// A crash between a rotation's publish and the deletion of the old key's prekeys would
    /// leave them served: before serving, delete the prekeys of every mailbox whose signed
    /// prekey its member's current identity key did not sign (one signature a mailbox).
    static func deleteStalePrekeysAtStart(_ mailboxes: [Mailbox], directory: RelayDirectory, writer: GroupCommitWriter, logger: Logger) async {
        guard !mailboxes.isEmpty else { return }
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            writer.deleteStalePrekeys(mailboxes, current: directory.prekeyOwnership(checkingKEMPrekeys: false)) { result in
                report(result, logger: logger)
                done.resume()
            }
        }
    }

    private static func report(_ result: Result<[Mailbox], StoreError>, logger: Logger) {
        switch result {
        case .success(let emptied):
            // Debug level names members; info only counts them.
            for mailbox in emptied { logger.debug("deleted prekeys an old identity key signed", metadata: ["member": "\(mailbox.name)"]) }
            if !emptied.isEmpty { logger.info("deleted prekeys that rotated identity keys signed", metadata: ["mailboxes": "\(emptied.count)"]) }
        case .failure(let error):
            logger.error("could not delete prekeys that rotated identity keys signed", metadata: ["error": "\(error.message)"])
        }
    }
}
