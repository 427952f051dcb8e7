import Testing
@testable import ValiseDirectory

@Suite("Member names")
struct MemberNameTests {
    @Test("valid names", arguments: ["alice@jakarta", "a@b", "bob.smith@nairobi-2", "x_y@consulate.geneva", "7@9"])
    func valid(_ text: String) throws {
        let name = try MemberName(text)
        #expect(name.value == text)
        #expect(name.person + "@" + name.mission == text)
    }

    @Test(
        "invalid names are refused with the rule",
        arguments: [
            "", "alice", "@jakarta", "alice@", "alice@@jakarta", "a@b@c", "Alice@jakarta", "alice@Jakarta",
            "al ice@jakarta", ".alice@jakarta", "alice@-jakarta", "élise@paris", "alice@jakarta\n",
            String(repeating: "a", count: 65) + "@jakarta", "alice@" + String(repeating: "j", count: 65),
        ]
    )
    func invalid(_ text: String) {
        let error = #expect(throws: NameError.self) { try MemberName(text) }
        #expect(error?.code == "invalid-name")
    }

    @Test("a typed name is taken in any case and kept lower-case; the directory's rule stays lower-case only")
    func typed() throws {
        #expect(try MemberName(typed: "Alice@JAKARTA").value == "alice@jakarta")
        #expect(try MemberName(typed: "bob.smith@nairobi-2").value == "bob.smith@nairobi-2")
        // Only A-Z: other letters stay what they are, and the rule refuses them.
        #expect(throws: NameError.self) { try MemberName(typed: "Élise@paris") }
        #expect(throws: NameError.self) { try MemberName("Alice@jakarta") }
    }

    @Test("control characters in a refused name are not echoed")
    func printable() {
        let error = #expect(throws: NameError.self) { try MemberName("bad\u{1b}[2Jname") }
        #expect(error?.message.contains("\u{1b}") == false)
    }
}
