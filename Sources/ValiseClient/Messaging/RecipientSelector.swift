import Foundation
public import ValiseDirectory

/// What `valise send --to` names: members, and selectors that stand for several of them
/// (`mission:NAME`, `role:NAME`, `all`), separated by commas. A list with a selector is a
/// circular; a list of names alone is an ordinary message, checked as it always was.
public struct RecipientSelector: Sendable, Equatable {
    public enum Term: Sendable, Equatable {
        case member(MemberName)
        /// Every active member whose enrollment's mission field is this (matched folded).
        case mission(String)
        /// Every active member whose enrollment's role field is this (matched folded).
        case role(String)
        /// Every active member.
        case all

        /// The term as it is named in messages ("mission:geneva").
        public var description: String {
            switch self {
            case .member(let name): name.value
            case .mission(let mission): "mission:\(mission)"
            case .role(let role): "role:\(role)"
            case .all: "all"
            }
        }

        var isSelector: Bool {
            if case .member = self { return false }
            return true
        }
    }

    /// The `--to` text as given (surrounding whitespace removed): what a circular's
    /// recipients see, inside their end-to-end message.
    public let text: String
    public let terms: [Term]

    /// Whether a selector is among the terms: then the message is a circular.
    public var isCircular: Bool { terms.contains(where: \.isSelector) }

    /// The longest `--to` text a circular may have (it travels in each recipient's message).
    public static let maximumCircularTextBytes = 512

    /// Parses `mission:geneva,bob@nairobi`. Member names may be typed in any case; a word
    /// with a colon that is not `mission:` or `role:` is refused rather than taken for a name.
    public init(parsing given: String) throws(ClientError) {
        text = given.trimmingCharacters(in: .whitespacesAndNewlines)
        var terms: [Term] = []
        for piece in text.split(separator: ",") {
            let word = piece.trimmingCharacters(in: .whitespaces)
            guard !word.isEmpty else { continue }
            terms.append(try Self.term(word))
        }
        guard !terms.isEmpty else { throw .usage("no-recipient", "name at least one recipient with --to") }
        self.terms = terms
        if isCircular && text.utf8.count > Self.maximumCircularTextBytes {
            throw .usage("selector-too-long", "--to is \(text.utf8.count) bytes long; a circular's list of recipients is at most \(Self.maximumCircularTextBytes) bytes (it travels inside each message); nothing was sent")
        }
    }

    private static func term(_ word: String) throws(ClientError) -> Term {
        if word.lowercased() == "all" { return .all }
        if let colon = word.firstIndex(of: ":") {
            let kind = word[..<colon].lowercased()
            let value = word[word.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            guard kind == "mission" || kind == "role" else {
                throw .usage("unknown-selector", "\(word) is neither a member name nor a selector; use mission:NAME, role:NAME or all")
            }
            guard !value.isEmpty else { throw .usage("empty-selector", "\(word) names no \(kind); write \(kind):NAME") }
            return kind == "mission" ? .mission(value) : .role(value)
        }
        do {
            return .member(try MemberName(typed: word))
        } catch {
            throw ClientError(.usage, error)
        }
    }

    /// The form two mission or role names are compared in: Unicode NFC, then case folded,
    /// so that "Genève" typed decomposed or in capitals is the directory's "genève".
    public static func matchingKey(_ text: String) -> String {
        text.precomposedStringWithCanonicalMapping.folding(options: [.caseInsensitive], locale: nil)
    }

    /// The members this names, each once, in the order named (a selector's members in name
    /// order). A list of names alone is returned as given, for `Messenger.compose` to check
    /// as before (a repeat, the sender, an unknown or revoked member: refused). In a
    /// circular, selectors take only active members and never the sender, and a selector
    /// that matches nobody is refused, naming it, before anything is written.
    public func resolve(in state: DirectoryState, sender: MemberName) throws(ClientError) -> [MemberName] {
        guard isCircular else {
            return terms.compactMap { if case .member(let name) = $0 { name } else { nil } }
        }
        let active = state.members.values.filter { $0.isActive && $0.name != sender }.sorted { $0.name < $1.name }
        var seen: Set<MemberName> = []
        var resolved: [MemberName] = []
        for term in terms {
            let names: [MemberName]
            switch term {
            case .member(let name):
                // Named explicitly: an unknown or revoked name is refused by compose, as
                // for any message; only the sender is left out.
                names = name == sender ? [] : [name]
            case .mission(let mission):
                let key = Self.matchingKey(mission)
                names = active.filter { Self.matchingKey($0.mission) == key }.map(\.name)
            case .role(let role):
                let key = Self.matchingKey(role)
                names = active.filter { Self.matchingKey($0.role) == key }.map(\.name)
            case .all:
                names = active.map(\.name)
            }
            if term.isSelector && names.isEmpty {
                throw ClientError(
                    kind: .usage, code: "selector-matches-nobody",
                    message: "\(term.description) matches no active member other than you in the directory (entry \(state.headSequence)); nothing was sent")
            }
            for name in names where seen.insert(name).inserted { resolved.append(name) }
        }
        guard !resolved.isEmpty else { throw .usage("self-recipient", "you cannot send a message to yourself") }
        return resolved
    }
}
