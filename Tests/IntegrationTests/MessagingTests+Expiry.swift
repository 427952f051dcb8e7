import Foundation
import Testing

extension MessagingTests {
    @Test("a message that expires before its recipient comes online is reported expired-undelivered (the relay's signed status); one that does not is delivered and confirmed")
    func expiredUndelivered() throws {
        try FakeTimeRelay.requireInstalled()
        let story = try Story()
        let (alice, bob) = ("alice@jakarta", "bob@geneva")
        try story.valise(bob, ["sync"])
        try story.valise(alice, ["sync"])
        try story.valise(alice, ["send", "--to", bob, "--precedence", "flash", "--expires", "1h", "the drill starts in ten minutes"])
        try story.valise(alice, ["send", "--to", bob, "--expires", "1d", "minutes of the drill to follow"])
        #expect(try story.sent(alice).map { $0["state"] as? String } == ["accepted", "accepted"])

        // Bob stays away for two hours of the relay's clock.
        #expect(story.world.relay.stop() == 0)
        let later = try FakeTimeRelay(
            offset: "+2h", directory: story.world.path("relay"), logPath: story.world.path("relay-two-hours-later.log"),
            environment: ["VALISED_QUEUE_EXPIRY_SWEEP_SECONDS": "1"])
        defer { _ = later.stop() }
        story.relayAddress = later.address
        #expect(story.world.eventually(within: 15) { !later.logLines(containing: "expired undelivered envelopes").isEmpty }, "no sweep:\n\(later.log)")

        let synced = try story.json(bob, ["sync"])
        #expect(synced["received"] as? Int == 1)
        #expect(try story.inbox(bob).map { $0["precedence"] as? String } == ["ROUTINE"], "the expired FLASH message was delivered late")
        let report = try story.valise(alice, ["sync"])
        #expect(report.stdout.contains("expired before the recipient took it"), "\(report.stdout)")
        let states = try story.sent(alice).map { $0["state"] as? String }
        #expect(states == ["expired-undelivered", "delivered"], "\(states)")
    }
}
