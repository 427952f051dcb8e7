/// Where the Prometheus endpoint listens (`metrics.listen`): a host and a port, the host
/// 127.0.0.1 when only a port is given, so that metrics stay on the machine unless the
/// operator names another address. Off (nil in `RelayConfiguration`) by default.
public struct MetricsListen: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String = "127.0.0.1", port: Int) {
        self.host = host
        self.port = port
    }

    /// What the setting accepts, for its error message.
    static let forms = "must be HOST:PORT, :PORT or PORT (an IPv6 host in brackets), or off"

    /// Parses `HOST:PORT`, `[IPv6]:PORT`, `:PORT` or `PORT`; nil for anything else (the
    /// caller says what is accepted). `off` is handled by the setting, not here.
    public init?(parsing text: String) {
        let host: Substring
        let portText: Substring
        if let colon = text.lastIndex(of: ":") {
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        } else {
            host = ""
            portText = text[...]
        }
        guard !portText.isEmpty, portText.allSatisfy(\.isASCIIDigit), let port = Int(portText), (0...65_535).contains(port) else { return nil }
        var name = host
        if name.hasPrefix("[") || name.hasSuffix("]") {
            guard name.count > 2, name.hasPrefix("["), name.hasSuffix("]") else { return nil }
            name = name.dropFirst().dropLast()
            guard name.contains(":") else { return nil }
        } else if name.contains(":") {
            // An IPv6 address without brackets: its last group could be read as the port.
            return nil
        }
        guard name.allSatisfy({ $0.isASCII && !$0.isWhitespace && $0 != "/" && $0 != "[" && $0 != "]" }) else { return nil }
        self.init(host: name.isEmpty ? "127.0.0.1" : String(name), port: port)
    }

    /// `HOST:PORT`, the host in brackets when it is an IPv6 address.
    public var description: String { "\(host.contains(":") ? "[\(host)]" : host):\(port)" }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}

extension RelayConfiguration.Setting {
    /// `metrics.listen`: off, or where the Prometheus endpoint listens.
    static let metricsListen = Self(key: "metrics.listen", flag: "--metrics-listen", parse: { text, effective in
        if text == "off" {
            effective.relay.metricsListen = nil
            return nil
        }
        guard let listen = MetricsListen(parsing: text) else { return MetricsListen.forms }
        effective.relay.metricsListen = listen
        return nil
    }, show: { $0.relay.metricsListen?.description ?? "off" })
}
