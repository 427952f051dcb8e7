import ArgumentParser
import Foundation
import ValiseClient
import ValiseCrypto
import ValiseDirectory

extension Valise {
    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show this device's state: home relay, outbox, unread messages, directory, keys.",
            discussion: """
                Says whether the relay answers (a handshake with the key the directory names \
                for it, nothing more), how many messages wait in the outbox, how many are \
                unread, the directory's head and how fresh it is, and this device's \
                fingerprint and prekeys. Nothing is sent or fetched: 'valise sync' does that.
                """
        )

        @OptionGroup var options: GlobalOptions
        @OptionGroup var relayOptions: RelayOptions

        func run() async throws {
            let report = try await reportingErrorsAsync { () async throws(ClientError) -> StatusReport in
                let now = Environment.now()
                let (session, messenger) = try openOffline(options, now: now)
                defer { messenger.close() }
                let (unread, waiting) = try messenger.counts()
                let prekeys = try messenger.prekeyCounts()
                var reachable: String
                let state = session.organisation.state
                let homeRelay = state.homeRelay(of: session.identity.memberName).map(DeviceStanding.describe)
                do throws(ClientError) {
                    let target = try DeviceSession.homeTarget(
                        in: state, member: session.identity.memberName, name: relayOptions.relayName, address: relayOptions.relay)
                    reachable = try await DeviceSession.connect(home: session.home, identity: session.identity, target: target, timeoutSeconds: 5) { (_, welcome) throws(ClientError) in
                        // Nothing is fetched here: a move is followed by 'valise sync', once verified.
                        if let says = welcome.notHomeSaysHome {
                            return "reachable (\(welcome.relayName) at \(welcome.endpoint), which says this device's home relay is \(says); 'valise sync' checks the directory and goes there)"
                        }
                        return "reachable (\(welcome.relayName) at \(welcome.endpoint), directory entries: \(welcome.count))"
                    }
                } catch {
                    reachable = "unreachable: \(error.message)"
                }
                let freshness = DirectoryFreshness(session.organisation, now: now)
                return StatusReport(
                    member: session.identity.memberName.value, fingerprint: session.identity.fingerprint.description, homeRelay: homeRelay, relay: reachable,
                    outboxWaiting: waiting, unread: unread, directoryEntries: session.organisation.verifier.count,
                    directoryHead: session.organisation.state.headHash.hex, directoryWarning: freshness.warning,
                    signedPrekeys: prekeys.signed, envelopeKeys: prekeys.envelope, oneTimePrekeys: prekeys.oneTime,
                    oneTimeKEMPrekeys: prekeys.oneTimeKEM, lastResortKEMPrekeys: prekeys.lastResortKEM)
            }
            if let warning = report.directoryWarning { printWarning(warning) }
            if options.json {
                printJSON(report)
                return
            }
            print("member:      \(report.member)")
            print("fingerprint: \(report.fingerprint)")
            if let homeRelay = report.homeRelay { print("home relay:  \(homeRelay)") }
            print("relay:       \(report.relay)")
            print("outbox:      \(report.outboxWaiting) message\(report.outboxWaiting == 1 ? "" : "s") waiting")
            print("unread:      \(report.unread)")
            print("directory:   \(report.directoryEntries) entries, head \(report.directoryHead.prefix(16))…")
            print("prekeys:     \(report.signedPrekeys) signed, \(report.envelopeKeys) envelope, \(report.oneTimePrekeys) one-time held on this device")
            print("KEM prekeys: \(report.lastResortKEMPrekeys) last-resort, \(report.oneTimeKEMPrekeys) one-time held on this device (ML-KEM-1024)")
        }
    }
}

struct StatusReport: Encodable {
    let member: String
    let fingerprint: String
    /// This device's home relay in the pinned directory, with its addresses.
    let homeRelay: String?
    let relay: String
    let outboxWaiting: Int
    let unread: Int
    let directoryEntries: Int
    let directoryHead: String
    let directoryWarning: String?
    let signedPrekeys: Int
    let envelopeKeys: Int
    let oneTimePrekeys: Int
    let oneTimeKEMPrekeys: Int
    let lastResortKEMPrekeys: Int
}
