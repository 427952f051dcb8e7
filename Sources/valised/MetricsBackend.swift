import CoreMetrics
import Foundation
import Logging
import NIOCore
import Prometheus
import ValiseRelay

/// The Prometheus backend of the relay's metrics: valised alone chooses it (the libraries
/// use swift-metrics' API only), and only when `metrics.listen` is set; otherwise metrics
/// stay no-ops and cost nothing.
enum MetricsBackend {
    /// Bootstraps swift-metrics with a Prometheus registry, with the commit histograms'
    /// buckets (swift-metrics carries none). Once per process.
    static func bootstrap() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets[RelayMetrics.commitSecondsLabel] = RelayMetrics.commitSecondsBuckets
        factory.valueHistogramBuckets[RelayMetrics.commitBatchLabel] = RelayMetrics.commitBatchBuckets
        MetricsSystem.bootstrap(factory)
        return registry
    }

    /// The endpoint, serving the relay's metrics brought up to date at each scrape; it
    /// announces itself on stdout as "valised metrics on HOST:PORT".
    static func endpoint(listen: MetricsListen, registry: PrometheusCollectorRegistry, relay: RelayServer, logger: Logger) -> MetricsServer {
        MetricsServer(listen: listen, logger: logger, render: {
            relay.collectMetrics()
            return registry.emitToBuffer()
        }, onListening: { address in
            let line = "valised metrics on \(address.ipAddress ?? "?"):\(address.port ?? 0)\n"
            FileHandle.standardOutput.write(Data(line.utf8))
        })
    }
}
