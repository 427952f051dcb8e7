import ArgumentParser
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals
import ValiseClient
import ValiseCrypto
import ValisePostgres
import ValiseRelay
import ValiseStore

extension Valised {
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the relay until SIGTERM or SIGINT.",
            discussion: """
                Every setting comes from, in order: these flags, then VALISED_* environment \
                variables (VALISED_LISTEN, VALISED_LIMITS_MAX_CONNECTIONS, …), then the YAML \
                file given with --config (config/valised.yaml documents each one), then the \
                defaults. They are read strictly: an unknown key or variable, or a value that \
                does not parse, stops the start naming it and its source ('valised check' \
                shows what would be used). With --listen HOST:0 a free port is chosen; the \
                relay prints "valised listening on HOST:PORT" once it accepts connections. \
                With --metrics-listen HOST:PORT (metrics.listen) it also serves Prometheus metrics \
                at http://HOST:PORT/metrics and prints "valised metrics on HOST:PORT" (docs/OPERATIONS.md, \
                "Metrics"). One relay runs per directory: a second one refuses to start.

                An encrypted relay key needs its passphrase: --passphrase-file FILE, or \
                $VALISED_PASSPHRASE.
                """
        )

        @OptionGroup var settingsOptions: SettingsOptions

        @Option(name: .long, help: ArgumentHelp("Read the relay key's passphrase from this file.", valueName: "file"))
        var passphraseFile: String?

        func run() async throws {
            let settings: RelaySettings
            // Before any key is opened: a build without PostgreSQL refuses store.kind postgres here.
            let postgres: PostgresStoreConfiguration?
            do {
                settings = try settingsOptions.load()
                postgres = try StoreSettings.postgres(settings.relay.store, readPassword: true)
            } catch {
                fail("configuration: \(error)")
            }
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = settings.logLevel
                return handler
            }
            let logger = Logger(label: "valised")
            let limits = settings.relay.limits
            logger.info("configuration", metadata: [
                "directory": "\(settings.relay.directory)",
                "limits.maxConnections": "\(limits.maximumConnections)",
                "limits.maxConnectionsPerAddress": "\(limits.maximumConnectionsPerAddress)",
                "limits.handshakesPerSecondPerAddress": "\(limits.handshakesPerSecondPerAddress)",
                "limits.handshakeTimeoutSeconds": "\(limits.handshakeTimeout)",
                "limits.idleTimeoutSeconds": "\(limits.idleTimeout)",
                "limits.frameTimeoutSeconds": "\(limits.frameTimeout)",
                "limits.maxMessageBytes": "\(limits.maximumMessageBytes)",
                "queue.maxBlobBytes": "\(settings.relay.queue.maximumBlobBytes)",
                "queue.maxBlobStoreBytes": "\(settings.relay.queue.maximumBlobStoreBytes)",
                "queue.maxBlobBytesPerDevice": "\(settings.relay.queue.maximumBlobBytesPerDevice)",
            ])

            let keys: RelayKeys
            let directory: RelayDirectory
            do throws(ClientError) {
                keys = try loadKeys(directory: settings.relay.directory)
                directory = try relayCall { () throws(RelayError) in
                    try RelayDirectory(directory: settings.relay.directory, relayKey: keys.noise.publicKey, now: Clock.now())
                }
            } catch {
                fail(error.message, status: ValisedExit.status(error.kind))
            }
            // Held until the process exits: two relays must never share one queue.
            let lock: FileLock
            do throws(FileError) {
                lock = try FileLock(path: settings.relay.directory + "/valised.lock", recordingProcessID: true)
            } catch where error.code == "busy" {
                let holder = FileLock.holder(of: settings.relay.directory + "/valised.lock").map { "PID \($0)" } ?? "PID unknown"
                fail("another valised (\(holder)) is running on \(settings.relay.directory); stop it first")
            } catch {
                fail(error.message)
            }
            defer { withExtendedLifetime(lock) {} }

            // The DIR lock above stays per node: each node of a relay on PostgreSQL has its own
            // copy of the directory (the same keys), and one valised runs per copy.
            let opened = OpenedStore.open(settings: settings, postgres: postgres, logger: logger) { fail($0) }
            defer { opened.close() }
            let store = opened.store

            // Before the relay makes its metrics: they are made with the bootstrapped backend.
            let registry = settings.relay.metricsListen.map { _ in MetricsBackend.bootstrap() }
            let notifier = SystemdNotifier()
            let server = RelayServer(
                configuration: settings.relay, keys: keys, directory: directory, store: store, logger: logger, blobs: opened.blobs
            ) { address in
                let line = "valised listening on \(address.ipAddress ?? "?"):\(address.port ?? 0)\n"
                FileHandle.standardOutput.write(Data(line.utf8))
                notifier.ready()
            }
            var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
                .init(service: server),
                .init(service: ShutdownNotice(notifier: notifier), successTerminationBehavior: .ignore),
            ]
            if let listen = settings.relay.metricsListen, let registry {
                let endpoint = MetricsBackend.endpoint(listen: listen, registry: registry, relay: server, logger: logger)
                do throws(RelayError) {
                    try await endpoint.bind()
                } catch {
                    fail(error.message)
                }
                services.append(.init(service: endpoint))
            }
            let group = ServiceGroup(
                configuration: ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            do {
                try await group.run()
            } catch {
                logger.error("the relay stopped with an error", metadata: ["error": "\(error)"])
                throw ExitCode.failure
            }
        }

        private func loadKeys(directory: String) throws(ClientError) -> RelayKeys {
            let file = RelayKeyFile(directory: directory)
            if try keyCall({ () throws(KeyFileError) in try file.isUnencrypted() }) {
                return try keyCall { () throws(KeyFileError) in try file.readUnencrypted() }
            }
            var reader = PassphraseReader()
            reader.noTerminalHint = "use --passphrase-file FILE or set VALISED_PASSPHRASE"
            let passphrase = try reader.read(
                from: reader.source(file: passphraseFile, variable: "VALISED_PASSPHRASE"), prompt: "Passphrase for \(file.path): ")
            let encrypted = EncryptedKeyFile<RelayKeys>(path: file.path, missingHint: "create it with: valised init")
            return try keyCall { () throws(KeyFileError) in try encrypted.unlock(passphrase: passphrase).payload }
        }

        private func fail(_ message: String, status: Int32 = 1) -> Never {
            FileHandle.standardError.write(Data("valised: error: \(message)\n".utf8))
            Foundation.exit(status)
        }
    }
}

/// Tells systemd STOPPING=1 as soon as the graceful shutdown begins.
struct ShutdownNotice: Service {
    let notifier: SystemdNotifier

    func run() async throws {
        try? await gracefulShutdown()
        notifier.stopping()
    }
}
