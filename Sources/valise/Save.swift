import ArgumentParser
import Foundation
import ValiseClient
import ValiseCrypto

extension Valise {
    struct Save: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Save a received message's attached files.",
            discussion: """
                Writes each attachment of message ID into the folder given with --out (the \
                current folder by default), under the sender's file name made safe: no \
                folders, no hidden names, no control or right-to-left override characters, \
                at most 255 bytes. Each file is decrypted into a temporary file in that \
                folder and checked (its length and hash) before it appears under its name; \
                an existing file is never replaced ("…exists; nothing was written"). Until \
                then attachments stay encrypted in the Valise home. Exits non-zero when any \
                attachment could not be saved.
                """
        )

        @OptionGroup var options: GlobalOptions

        @Argument(help: ArgumentHelp("The message id, or enough of its start to be unambiguous.", valueName: "id"))
        var id: String

        @Option(name: .long, help: ArgumentHelp("The folder to write the files into (default: the current folder).", valueName: "dir"))
        var out: String?

        func run() async throws {
            let results = try reportingErrors { () throws(ClientError) -> [SavedAttachment] in
                let home = try options.resolveHome()
                let (_, messenger) = try openOffline(options, now: Environment.now())
                defer { messenger.close() }
                let message = try messenger.read(id)
                let attachments = try messenger.attachments(of: message.id)
                guard !attachments.isEmpty else { throw .usage("no-attachments", "message \(MessageText.shortID(message.id)) has no attachments") }
                let folder = out ?? FileManager.default.currentDirectoryPath
                return AttachmentSaver.saveAll(attachments, home: home, into: folder)
            }
            if options.json {
                printJSON(["attachments": results])
            } else {
                for result in results {
                    if let path = result.path {
                        print("Saved \(MessageText.printable(result.name)) as \(MessageText.printable(path)).")
                    } else if let error = result.error {
                        printError(MessageText.printable(error))
                    }
                }
            }
            if results.contains(where: { $0.path == nil }) { throw ExitCode(ExitStatus.failure) }
        }
    }
}

/// The "Attachments:" block of `valise read`.
enum AttachmentListing {
    static func print(_ attachments: [InboxAttachment], messageID: [UInt8]) {
        guard !attachments.isEmpty else { return }
        Swift.print("")
        Swift.print("Attachments:")
        for attachment in attachments {
            Swift.print("  \(MessageText.printable(attachment.name))  \(ByteCount.describe(attachment.size))  \(attachment.mediaType)  [\(attachment.state)]")
            Swift.print("    BLAKE2b-256 \(attachment.hash)")
        }
        if attachments.contains(where: { $0.state == "stored" }) {
            Swift.print("Save them with: valise save \(MessageText.shortID(messageID)) [--out DIR]")
        }
    }
}
