import ArgumentParser
import Foundation
import ValiseRelay

extension Valised {
    struct Queue: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List, hold, release or delete queued envelopes, through the running relay.",
            discussion: """
                The relay is the store's only writer, so these commands ask the running relay over \
                its control socket (DIR/control.socket, the relay's user only); with no relay \
                running they fail. A held envelope is neither delivered nor forwarded, and its \
                expiry keeps running; a deleted one is gone, and its sender's status query says \
                undeliverable (deleted by the operator). Each action is logged by the relay.
                """,
            subcommands: [List.self, Hold.self, Release.self, Delete.self]
        )

        struct List: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "List queued envelopes, oldest first: id, mailbox (or the relay it waits for), precedence, size, age, held.")

            @Option(name: .long, help: ArgumentHelp("The relay's directory.", valueName: "dir"))
            var dir: String

            @Option(name: .long, help: ArgumentHelp("Only this recipient's envelopes.", valueName: "name"))
            var mailbox: String?

            @Flag(name: .long, help: "Print the result as JSON.")
            var json = false

            func run() throws {
                let response = try ask(dir, ControlRequest(command: .list, mailbox: mailbox))
                let envelopes = response.envelopes ?? []
                if json {
                    try printJSON(["envelopes": envelopes.map(\.object)])
                    return
                }
                let now = UInt64(max(0, Date().timeIntervalSince1970))
                for envelope in envelopes {
                    let whereTo = envelope.destination.map { "\(envelope.mailbox) via \($0)" } ?? envelope.mailbox
                    let age = now > envelope.arrivedAt ? now - envelope.arrivedAt : 0
                    print("\(envelope.id)  \(pad(whereTo, 24)) \(pad(envelope.precedence, 9)) \(envelope.bytes) bytes, \(age) s old\(envelope.held ? ", held" : "")")
                }
                print("\(envelopes.count) envelopes\(envelopes.count == ControlProtocol.maximumListed ? " (the first \(ControlProtocol.maximumListed))" : "")")
            }
        }

        struct Hold: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Hold envelopes back: not delivered nor forwarded until released; they still expire.")
            @OptionGroup var action: ActionOptions
            func run() throws { try action.perform(.hold) }
        }

        struct Release: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Release held envelopes: they are delivered or forwarded now.")
            @OptionGroup var action: ActionOptions
            func run() throws { try action.perform(.release) }
        }

        struct Delete: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Delete envelopes; each sender's status query then says undeliverable (deleted by the operator).")
            @OptionGroup var action: ActionOptions
            func run() throws { try action.perform(.delete) }
        }
    }

    struct ActionOptions: ParsableArguments {
        @Option(name: .long, help: ArgumentHelp("The relay's directory.", valueName: "dir"))
        var dir: String

        @Flag(name: .long, help: "Print the result as JSON.")
        var json = false

        @Argument(help: ArgumentHelp("Envelope ids (32 hexadecimal digits, as 'valised queue list' shows them).", valueName: "id"))
        var ids: [String]

        func validate() throws {
            guard !ids.isEmpty else { throw ValidationError("give at least one envelope id") }
            guard ids.count <= ControlProtocol.maximumIDs else { throw ValidationError("at most \(ControlProtocol.maximumIDs) ids at once") }
        }

        /// Prints one line per id; exits 1 when any id was not acted on.
        func perform(_ command: ControlRequest.Command) throws {
            let results = try ask(dir, ControlRequest(command: command, ids: ids)).results ?? []
            if json {
                try printJSON(["results": results.map { ["id": $0.id, "outcome": $0.outcome] }])
            } else {
                for result in results {
                    switch result.outcome {
                    case "unknown": FileHandle.standardError.write(Data("valised: error: \(result.id): no queued envelope has this id\n".utf8))
                    case "invalid": FileHandle.standardError.write(Data("valised: error: \(result.id): not an envelope id (32 hexadecimal digits)\n".utf8))
                    default: print("\(result.id) \(result.outcome)")
                    }
                }
            }
            if results.count != ids.count || results.contains(where: { ["unknown", "invalid"].contains($0.outcome) }) { throw ExitCode(1) }
        }
    }
}

/// One request to the running relay; a clear error (exit 1) when none runs or it refuses.
func ask(_ directory: String, _ request: ControlRequest) throws -> ControlResponse {
    let response: ControlResponse
    do {
        response = try ControlClient.ask(directory: directory, request)
    } catch {
        let hint = error.notRunning ? ": start valised (the store has one writer, the running relay)" : ""
        FileHandle.standardError.write(Data("valised: error: \(error.description)\(hint)\n".utf8))
        throw ExitCode(1)
    }
    if let message = response.error {
        FileHandle.standardError.write(Data("valised: error: the relay refused: \(message)\n".utf8))
        throw ExitCode(1)
    }
    return response
}

func printJSON(_ object: Any) throws {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}

func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
}

extension ControlEnvelope {
    var object: [String: Any] {
        var object: [String: Any] = [
            "id": id, "mailbox": mailbox, "precedence": precedence, "arrivedAt": arrivedAt, "expiresAt": expiresAt, "bytes": bytes, "held": held,
        ]
        if let destination { object["destination"] = destination }
        return object
    }
}
