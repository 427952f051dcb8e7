import Foundation
import Testing
import ValiseCrypto
@testable import ValiseDirectory

/// The text forms of `admin.pub`, `relay.pub` and the request files (docs/PROTOCOL.md, "Armor").
@Suite("Armored public files")
struct ArmoredFileTests {
    /// One sample of each armored kind, with the reader that must accept it.
    struct Sample: Sendable, CustomStringConvertible {
        let description: String
        let armored: [UInt8]
        let binary: [UInt8]
        let decode: @Sendable ([UInt8]) throws -> [UInt8]
    }

    static let samples: [Sample] = [
        Sample(
            description: "admin public key", armored: PublicFileTests.adminFile.armoredFileBytes(),
            binary: PublicFileTests.adminFile.fileBytes(), decode: { try AdminPublicFile(fileBytes: $0).fileBytes() }),
        Sample(
            description: "relay public key", armored: PublicFileTests.relay.publicFile.armoredFileBytes(),
            binary: PublicFileTests.relay.publicFile.fileBytes(), decode: { try RelayPublicFile(fileBytes: $0).fileBytes() }),
        Sample(
            description: "enrollment request", armored: PublicFileTests.requests[0].armoredFileBytes(),
            binary: PublicFileTests.requests[0].fileBytes(), decode: { try MemberRequest(fileBytes: $0).fileBytes() }),
        Sample(
            description: "rotation request", armored: PublicFileTests.requests[1].armoredFileBytes(),
            binary: PublicFileTests.requests[1].fileBytes(), decode: { try MemberRequest(fileBytes: $0).fileBytes() }),
    ]

    static func lines(_ bytes: [UInt8]) -> [String] {
        String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    static func text(_ lines: [String]) -> [UInt8] { Array(lines.joined(separator: "\n").utf8) }

    @Test("each kind round-trips through its text form, and the binary form is still read", arguments: samples)
    func roundTrip(_ sample: Sample) throws {
        #expect(try sample.decode(sample.armored) == sample.binary)
        #expect(try sample.decode(sample.binary) == sample.binary)
        let lines = Self.lines(sample.armored)
        let label = sample.description.uppercased()
        #expect(lines.first == "-----BEGIN VALISE \(label)-----")
        #expect(lines.dropLast().last == "-----END VALISE \(label)-----")
        #expect(lines.last == "", "the file ends with a line feed")
        #expect(lines[1].hasPrefix("Comment: "))
        #expect(lines.allSatisfy { $0.utf8.allSatisfy { (0x20...0x7E).contains($0) } })
        #expect(lines.dropFirst(2).dropLast(2).allSatisfy { (1...64).contains($0.count) })
    }

    @Test("CR LF line ends, blank lines around the armor and spaces at line ends are read", arguments: samples)
    func mailTolerance(_ sample: Sample) throws {
        let mailed = Self.lines(sample.armored).map { $0.isEmpty ? $0 : $0 + " \r" }
        #expect(try sample.decode(Array("\r\n\n  \n".utf8) + Self.text(mailed) + Array("\r\n\r\n".utf8)) == sample.binary)
    }

    @Test("comment lines are informational: changed, added or removed, the file reads the same", arguments: samples)
    func commentsIgnored(_ sample: Sample) throws {
        var lines = Self.lines(sample.armored)
        lines[1] = "Comment: this is the key of somebody else entirely"
        lines.insert("Comment: a second comment", at: 2)
        #expect(try sample.decode(Self.text(lines)) == sample.binary)
        lines.remove(at: 1)
        lines.remove(at: 1)
        #expect(try sample.decode(Self.text(lines)) == sample.binary)
    }

    @Test("a file of another kind is refused, naming both kinds")
    func wrongKind() throws {
        let relay = PublicFileTests.relay.publicFile.armoredFileBytes()
        let error = #expect(throws: FormatError.self) { try AdminPublicFile(fileBytes: relay) }
        #expect(error?.message.contains("relay public key") == true)
        #expect(error?.message.contains("admin public key") == true)
        #expect(throws: FormatError.self) { try MemberRequest(fileBytes: relay) }
        #expect(throws: FormatError.self) { try RelayPublicFile(fileBytes: PublicFileTests.requests[0].armoredFileBytes()) }
        // The label must name the kind the bytes hold: an enrollment relabelled as a rotation.
        let relabelled = Self.text(Self.lines(PublicFileTests.requests[0].armoredFileBytes()).map {
            $0.replacingOccurrences(of: "ENROLLMENT", with: "ROTATION")
        })
        let mismatch = #expect(throws: FormatError.self) { try MemberRequest(fileBytes: relabelled) }
        #expect(mismatch?.message.contains("enrollment request") == true)
        // BEGIN and END must agree.
        var lines = Self.lines(relay)
        lines[lines.count - 2] = "-----END VALISE ADMIN PUBLIC KEY-----"
        #expect(throws: FormatError.self) { try RelayPublicFile(fileBytes: Self.text(lines)) }
    }

    @Test("any change to a base64 character is refused", arguments: samples)
    func tamperedBase64(_ sample: Sample) {
        let lines = Self.lines(sample.armored)
        for row in 2..<(lines.count - 2) {
            let line = Array(lines[row].utf8)
            for column in line.indices {
                var changed = line
                changed[column] = line[column] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
                var copy = lines
                copy[row] = String(decoding: changed, as: UTF8.self)
                #expect(throws: FormatError.self, "line \(row) column \(column)") { try sample.decode(Self.text(copy)) }
            }
        }
    }

    @Test("base64 that is not strict and canonical is refused")
    func strictBase64() throws {
        let lines = Self.lines(PublicFileTests.relay.publicFile.armoredFileBytes())
        let last = lines.count - 3
        #expect(lines[last].hasSuffix("="), "137 bytes end in one padding character")
        func refused(_ edit: (inout [String]) -> Void, _ comment: Comment) {
            var copy = lines
            edit(&copy)
            #expect(throws: FormatError.self, comment) { try RelayPublicFile(fileBytes: Self.text(copy)) }
        }
        // The character before the padding carries two unused bits, which must be zero.
        refused({ lines in
            var chars = Array(lines[last])
            let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
            chars[chars.count - 2] = alphabet[alphabet.firstIndex(of: chars[chars.count - 2])! | 1]
            lines[last] = String(chars)
        }, "non-zero unused bits")
        refused({ $0[last].removeLast() }, "missing padding")
        refused({ $0[2].insert(" ", at: $0[2].index($0[2].startIndex, offsetBy: 10)) }, "a space inside a line")
        refused({ $0.insert("", at: 3) }, "a blank line inside the armor")
        refused({ $0.insert("Comment: late", at: 3) }, "a comment after the base64")
        refused({ $0[2] = "!" + $0[2].dropFirst() }, "a character outside the alphabet")
        refused({ $0.insert("trailing text", at: $0.count - 1) }, "text after the END line")
        refused({ $0[2] += String(repeating: "A", count: 76 - $0[2].count + 4) }, "a line longer than 76 characters")
    }

    @Test("every truncation of the text form is refused", arguments: samples)
    func truncated(_ sample: Sample) {
        // Cutting only the final line feed leaves a complete armor.
        for length in 0..<(sample.armored.count - 1) {
            #expect(throws: FormatError.self, "cut to \(length)") { try sample.decode(Array(sample.armored.prefix(length))) }
        }
        let withoutEnd = Self.lines(sample.armored).dropLast(2)
        let error = #expect(throws: FormatError.self) { try sample.decode(Self.text(Array(withoutEnd))) }
        #expect(error?.code == "truncated")
    }

    @Test("an oversized text form is refused before it is parsed")
    func oversized() throws {
        let file = PublicFileTests.relay.publicFile.armoredFileBytes()
        #expect(try RelayPublicFile(fileBytes: file + [UInt8](repeating: 0x0A, count: Armor.maximumByteCount - file.count)) == PublicFileTests.relay.publicFile)
        let error = #expect(throws: FormatError.self) {
            try RelayPublicFile(fileBytes: file + [UInt8](repeating: 0x0A, count: Armor.maximumByteCount - file.count + 1))
        }
        #expect(error?.message.contains("too large") == true)
        // A body that decodes to more than the binary form's bound is refused by that bound.
        let big = Armor.encode([UInt8](repeating: 0x56, count: 2048), label: .relayPublicKey)
        #expect(throws: FormatError.self) { try RelayPublicFile(fileBytes: big) }
    }

    @Test("comments never break the armor: non-printable characters are replaced")
    func commentSanitised() throws {
        let armored = Armor.encode([1, 2, 3], label: .adminPublicKey, comments: ["line\nbreak é"])
        #expect(Self.lines(armored)[1] == "Comment: line?break ?")
        let parsed = try Armor(parsing: armored, labels: [.adminPublicKey], what: "test")
        #expect(parsed.body == [1, 2, 3])
    }
}
