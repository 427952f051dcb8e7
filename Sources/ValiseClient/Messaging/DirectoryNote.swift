import Foundation
import ValiseCrypto
import ValiseDirectory
import ValiseSession
import ValiseStore

/// What a message's sender said about the directory, once its session proved who it is.
/// Only two validly signed statements for one sequence with different heads make the
/// DIRECTORY FORK alarm: a head alone can be made up by any enrolled member (or, before
/// authentication, by the relay), and false alarms teach people to ignore a real one.
public enum DirectoryNote: Sendable, Hashable, Codable {
    /// The sender's head differs at an entry this device has, with nothing signed to back it.
    case unverified(sequence: UInt64)
    /// This device's own entry and the sender's checkpoint (signed by the organisation's
    /// checkpoint key) disagree at `sequence`; the evidence is in the file at `evidence`.
    case fork(sequence: UInt64, evidence: String)

    public var isAlarm: Bool {
        if case .fork = self { return true }
        return false
    }

    public var text: String {
        switch self {
        case .unverified:
            "the sender's directory head differs, unverified"
        case .fork(let sequence, let evidence):
            "DIRECTORY FORK: the organisation's checkpoint key signed another entry \(sequence) than the one this device verified. Someone is showing different directories to different members; tell your key administrator at once and give them \(evidence)"
        }
    }
}

extension Messenger {
    /// Compares the authenticated sender's head and checkpoint with this device's log.
    /// A checkpoint this device cannot check (ahead of its log, by an older or unknown key,
    /// past its key's not-after) proves nothing and is ignored.
    func directoryNote(_ envelope: SealedEnvelope, now: UInt64) throws -> DirectoryNote? {
        let verifier = directory.verifier
        if let encoded = envelope.senderCheckpoint {
            guard let checkpoint = try? Checkpoint(decoding: encoded) else {
                throw Refusal(code: "malformed", reason: "the envelope's checkpoint does not decode")
            }
            do throws(DirectoryError) {
                try checkpoint.verify(against: verifier, now: now)
            } catch where error.code == DirectoryError.Rule.fork.rawValue {
                let own = directory.bundle.entries[Int(checkpoint.sequence)]
                let evidence = ForkEvidence(sequence: checkpoint.sequence, found: now, statements: [.entry(own), .checkpoint(checkpoint)])
                return .fork(sequence: checkpoint.sequence, evidence: try keep(evidence))
            } catch {}
        }
        let head = envelope.senderHead
        if head.sequence < UInt64(verifier.count), !constantTimeEquals(verifier.hashes[Int(head.sequence)].bytes, head.hash) {
            return .unverified(sequence: head.sequence)
        }
        return nil
    }

    /// Writes the evidence as `HOME/fork-evidence/SEQUENCE-FOUND.evidence` (0600 in 0700),
    /// and returns its path.
    private func keep(_ evidence: ForkEvidence) throws(ClientError) -> String {
        let path = "\(forkEvidencePath)/\(evidence.sequence)-\(evidence.found).evidence"
        do {
            try SecureFile.preparePrivateDirectory(forkEvidencePath)
            try SecureFile.writeAtomically(evidence.fileBytes(), to: path, mode: 0o600)
        } catch {
            throw ClientError(error)
        }
        return path
    }
}
