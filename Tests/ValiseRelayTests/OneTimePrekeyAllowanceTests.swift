import Testing
import ValiseCrypto
import ValiseDirectory
@testable import ValiseRelay

@Suite("One-time prekey allowance")
struct OneTimePrekeyAllowanceTests {
    let alice = AgreementPrivateKey().publicKey
    let carol = AgreementPrivateKey().publicKey

    func member(_ name: String) throws -> MemberName { try MemberName(name) }

    @Test("one of each member's per device an hour; another device or member has its own; after the hour, another")
    func perMemberPerHour() throws {
        let clock = DeviceRateLimiterTests.Clock()
        let allowance = OneTimePrekeyAllowance(perMinute: 60, burst: 100) { clock.now }
        let bob = try member("bob@jakarta")
        #expect(allowance.reserve(device: alice, member: bob) == .granted)
        #expect(allowance.reserve(device: alice, member: bob) == .alreadyHanded)
        #expect(allowance.reserve(device: carol, member: bob) == .granted)
        #expect(allowance.reserve(device: alice, member: try member("dave@nairobi")) == .granted)
        clock.advance(seconds: 3599)
        #expect(allowance.reserve(device: alice, member: bob) == .alreadyHanded)
        clock.advance(seconds: 1)
        #expect(allowance.count == 0, "every entry expired")
        #expect(allowance.reserve(device: alice, member: bob) == .granted)
    }

    @Test("past the device's rate: none, and no entry made")
    func deviceRate() throws {
        let clock = DeviceRateLimiterTests.Clock()
        let allowance = OneTimePrekeyAllowance(perMinute: 1, burst: 2) { clock.now }
        let (bob, dave, erin) = (try member("bob@jakarta"), try member("dave@nairobi"), try member("erin@nairobi"))
        #expect(allowance.reserve(device: alice, member: bob) == .granted)
        #expect(allowance.reserve(device: alice, member: dave) == .granted)
        #expect(allowance.reserve(device: alice, member: erin) == .deviceRate)
        #expect(allowance.count == 2)
        clock.advance(seconds: 60)
        #expect(allowance.reserve(device: alice, member: dave) == .alreadyHanded)
        #expect(allowance.reserve(device: alice, member: erin) == .granted, "a minute later, one more")
    }

    @Test("at its capacity the table hands out none until entries expire")
    func capacity() throws {
        let clock = DeviceRateLimiterTests.Clock()
        let allowance = OneTimePrekeyAllowance(perMinute: 60, burst: 100, capacity: 3) { clock.now }
        for name in ["a@m", "b@m", "c@m"] { #expect(allowance.reserve(device: alice, member: try member(name)) == .granted) }
        #expect(allowance.reserve(device: carol, member: try member("a@m")) == .tableFull)
        clock.advance(seconds: 3600)
        #expect(allowance.reserve(device: carol, member: try member("a@m")) == .granted)
    }

    @Test("a grant given back (the store's transaction failed) lets the device have that member's again; the new entry keeps its own hour")
    func release() throws {
        let clock = DeviceRateLimiterTests.Clock()
        let allowance = OneTimePrekeyAllowance(perMinute: 60, burst: 100) { clock.now }
        let bob = try member("bob@jakarta")
        #expect(allowance.reserve(device: alice, member: bob) == .granted)
        allowance.release(device: alice, member: bob)
        #expect(allowance.count == 0)
        clock.advance(seconds: 1800)
        #expect(allowance.reserve(device: alice, member: bob) == .granted, "given back: not held against the device")
        clock.advance(seconds: 1800)
        // The first entry's hour is over, the second's is not: the old expiry must not end it.
        #expect(allowance.reserve(device: alice, member: bob) == .alreadyHanded)
        clock.advance(seconds: 1800)
        #expect(allowance.reserve(device: alice, member: bob) == .granted)
    }
}
