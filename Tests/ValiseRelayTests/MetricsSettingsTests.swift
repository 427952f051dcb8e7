import Testing
@testable import ValiseRelay

/// `metrics.listen`: off by default; a port alone, or `:PORT`, listens on loopback; any
/// other text that is not HOST:PORT is refused with the forms it accepts.
@Suite("Metrics settings: metrics.listen")
struct MetricsSettingsTests {
    static func resolve(
        file: [String: String] = [:], environment: [String: String] = [:], flags: [String: String] = [:]
    ) throws(RelayConfiguration.SettingError) -> RelayConfiguration.Effective {
        try RelayConfiguration.resolve(
            file: file.merging(["directory": "/var/lib/valised"]) { given, _ in given }, filePath: "/etc/valised/valised.yaml",
            environment: environment, flags: flags)
    }

    @Test("off unless set, and listed by valised check as off")
    func offByDefault() throws {
        let effective = try Self.resolve()
        #expect(effective.relay.metricsListen == nil)
        #expect(effective.lines.contains("metrics.listen: off (default)"))
    }

    @Test("accepted forms", arguments: [
        ("127.0.0.1:9740", MetricsListen(host: "127.0.0.1", port: 9740)),
        ("9740", MetricsListen(host: "127.0.0.1", port: 9740)),
        (":9740", MetricsListen(host: "127.0.0.1", port: 9740)),
        ("0", MetricsListen(host: "127.0.0.1", port: 0)),
        ("0.0.0.0:9740", MetricsListen(host: "0.0.0.0", port: 9740)),
        ("[::1]:9740", MetricsListen(host: "::1", port: 9740)),
        ("monitor.internal:9740", MetricsListen(host: "monitor.internal", port: 9740)),
    ])
    func accepted(text: String, listen: MetricsListen) throws {
        let effective = try Self.resolve(file: ["metrics.listen": text])
        #expect(effective.relay.metricsListen == listen)
    }

    @Test("refused forms name the key, the value and the source", arguments: [
        "", ":", "on", "localhost", "localhost:", "127.0.0.1:65536", "127.0.0.1:-1", "::1:9740", "[::1]", "[127.0.0.1]:9740",
        "1.2.3.4:97 40", "host name:9740", "[::1:9740", "127.0.0.1:+80", "http://127.0.0.1:9740",
    ])
    func refused(text: String) {
        do {
            let effective = try Self.resolve(environment: ["VALISED_METRICS_LISTEN": text])
            Issue.record("'\(text)' was accepted as \(String(describing: effective.relay.metricsListen))")
        } catch {
            #expect(error.description.contains("metrics.listen") && error.description.contains("'\(text)'"), "\(error)")
            #expect(error.description.contains("environment VALISED_METRICS_LISTEN"), "\(error)")
            #expect(error.description.contains("HOST:PORT"), "\(error)")
        }
    }

    @Test("the flag wins over the file, and off turns a file's endpoint off")
    func flagAndOff() throws {
        let flagged = try Self.resolve(file: ["metrics.listen": "127.0.0.1:1"], flags: ["metrics.listen": "127.0.0.1:0"])
        #expect(flagged.relay.metricsListen == MetricsListen(port: 0))
        #expect(flagged.lines.contains("metrics.listen: 127.0.0.1:0 (flag --metrics-listen)"))
        let off = try Self.resolve(file: ["metrics.listen": "127.0.0.1:1"], environment: ["VALISED_METRICS_LISTEN": "off"])
        #expect(off.relay.metricsListen == nil)
        let ipv6 = try Self.resolve(flags: ["metrics.listen": "[::1]:9740"])
        #expect(ipv6.lines.contains("metrics.listen: [::1]:9740 (flag --metrics-listen)"))
    }

    @Test("the relay's own address is refused")
    func notTheRelaysAddress() {
        do {
            _ = try Self.resolve(file: ["listen": "127.0.0.1:7400", "metrics.listen": "7400"])
            Issue.record("metrics.listen on the relay's own address was accepted")
        } catch {
            #expect(error.description.contains("metrics.listen must not be the relay's own address"), "\(error)")
        }
    }
}
