import ValiseCrypto
import ValiseWire

/// The relay's CPU cost per handshake: complete handshakes run in process, both sides, with
/// only the responder's calls timed (read frame 1, write frame 2, read frame 3, split), for
/// the hybrid Noise_XKhfs the relay serves and for the classical Noise_XK it no longer
/// accepts (run here only, as the comparison the issue asks for). The two take turns every
/// 50 handshakes, so that a machine shared with other work slows both alike.
struct HandshakeBenchmark {
    struct Sample {
        var seconds = 0.0
        var handshakes = 0
        var perSecond: Double { Double(handshakes) / seconds }
    }

    struct Result {
        var hybrid: [Sample] = []
        var classical: [Sample] = []
    }

    static let turn = 50
    let iterations: Int
    let repetitions: Int
    let relayKey = AgreementPrivateKey()
    let clientKey = AgreementPrivateKey()

    func run() -> Result {
        var result = Result()
        _ = handshakes(.classicalClientRelay, count: Self.turn)  // warm up both
        _ = handshakes(ValiseTransport.clientProtocol, count: Self.turn)
        for _ in 0..<repetitions {
            var hybrid = Sample()
            var classical = Sample()
            while hybrid.handshakes < iterations {
                let count = min(Self.turn, iterations - hybrid.handshakes)
                hybrid.seconds += handshakes(ValiseTransport.clientProtocol, count: count)
                hybrid.handshakes += count
                classical.seconds += handshakes(.classicalClientRelay, count: count)
                classical.handshakes += count
            }
            result.hybrid.append(hybrid)
            result.classical.append(classical)
        }
        return result
    }

    /// Runs `count` complete handshakes; the responder's CPU seconds.
    func handshakes(_ noiseProtocol: NoiseProtocol, count: Int) -> Double {
        let version: UInt8 = noiseProtocol == .classicalClientRelay ? 1 : ValiseTransport.clientVersion
        let prologue = Preamble(.client, version: version).prologue
        var relaySeconds = 0.0
        for _ in 0..<count {
            var client = try! HandshakeState(
                protocol: noiseProtocol, role: .initiator, prologue: prologue, staticKey: clientKey, remoteStaticKey: relayKey.publicKey)
            let first = try! client.writeMessage(payload: [])
            var relay: HandshakeState?
            var second: [UInt8] = []
            relaySeconds += Clock.threadCPUSeconds {
                var responder = try! HandshakeState(
                    protocol: noiseProtocol, role: .responder, prologue: prologue, staticKey: relayKey, remoteStaticKey: nil)
                _ = try! responder.readMessage(first)
                second = try! responder.writeMessage(payload: [])
                relay = responder
            }
            _ = try! client.readMessage(second)
            let third = try! client.writeMessage(payload: [])
            relaySeconds += Clock.threadCPUSeconds {
                _ = try! relay!.readMessage(third)
                precondition(relay!.split() != nil)
            }
            precondition(client.handshakeHash == relay!.handshakeHash)
        }
        return relaySeconds
    }
}
