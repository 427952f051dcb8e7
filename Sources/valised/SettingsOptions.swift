import ArgumentParser

/// The flags that give settings, shared by `run` and `check`, which must read a
/// configuration the same way.
struct SettingsOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The relay's directory (from 'valised init').", valueName: "dir"))
    var dir: String?

    @Option(name: .long, help: ArgumentHelp("Where to listen (default 127.0.0.1:7400).", valueName: "host:port"))
    var listen: String?

    @Option(name: .long, help: ArgumentHelp("A YAML configuration file.", valueName: "file"))
    var config: String?

    @Option(name: .long, help: ArgumentHelp("trace, debug, info, notice, warning, error or critical (default info).", valueName: "level"))
    var logLevel: String?

    @Option(name: .long, help: ArgumentHelp(
        "Serve Prometheus metrics at http://HOST:PORT/metrics (a port alone: on 127.0.0.1; default off).", valueName: "host:port"))
    var metricsListen: String?

    /// The flags given, by setting key.
    var values: [String: String] {
        var values: [String: String] = [:]
        if let dir { values["directory"] = dir }
        if let listen { values["listen"] = listen }
        if let logLevel { values["log.level"] = logLevel }
        if let metricsListen { values["metrics.listen"] = metricsListen }
        return values
    }

    func load() throws -> RelaySettings {
        try RelaySettings.load(flags: values, configFile: config)
    }
}
