import Foundation
import Testing
import ValiseCrypto
import ValiseStore
@testable import ValiseRelay
import ValiseWire

/// What the relay checks in a prekey upload's KEM prekeys before storing anything, and the
/// refusal of a Hello of another relay protocol version (docs/PROTOCOL.md, "Prekeys").
@Suite("Prekey uploads: KEM prekeys and the protocol version")
struct PrekeyUploadCheckTests {
    let identity = SigningKey()
    let key = MLKEM1024PrivateKey().publicKey

    /// Signed as PROTOCOL.md says: purpose kem-prekey over u8 kind ‖ key.
    func prekey(_ key: [UInt8], kind: UInt8, by signer: SigningKey? = nil, purpose: String = "kem-prekey") -> WireKEMPrekey {
        var prekey = WireKEMPrekey()
        prekey.key = Data(key)
        prekey.signature = Data((signer ?? identity).signature(for: [kind] + key, purpose: SignaturePurpose(purpose)).bytes)
        return prekey
    }

    func upload(lastResort: WireKEMPrekey?, oneTime: [WireKEMPrekey] = []) -> WirePrekeyUpload {
        var upload = WirePrekeyUpload()
        if let lastResort { upload.lastResortKemPrekey = lastResort }
        upload.oneTimeKemPrekeys = oneTime
        return upload
    }

    @Test("well-signed ML-KEM-1024 keys of the right kinds pass, exactly as uploaded")
    func good() throws {
        let other = MLKEM1024PrivateKey().publicKey
        let checked = try RelayRequestProcessor.checkKEMPrekeys(
            upload(lastResort: prekey(key.bytes, kind: 2), oneTime: [prekey(other.bytes, kind: 1)]), identity: identity.publicKey).get()
        #expect(checked.lastResort.key == key.bytes && checked.oneTime.map(\.key) == [other.bytes])
        #expect(checked.lastResort.signature.count == 64)
    }

    @Test("refused: no last-resort key, the other kind, another signer, another purpose, a short or unparsable key, a short signature")
    func refused() {
        var short = prekey(key.bytes, kind: 1)
        short.signature = short.signature.prefix(63)
        let bad: [(String, WirePrekeyUpload)] = [
            ("no last resort", upload(lastResort: nil)),
            ("last resort signed as one-time", upload(lastResort: prekey(key.bytes, kind: 1))),
            ("one-time signed as last resort", upload(lastResort: prekey(key.bytes, kind: 2), oneTime: [prekey(key.bytes, kind: 2)])),
            ("another signer", upload(lastResort: prekey(key.bytes, kind: 2, by: SigningKey()))),
            ("the signed prekey's purpose", upload(lastResort: prekey(key.bytes, kind: 2, purpose: "signed-prekey"))),
            ("short key", upload(lastResort: prekey(Array(key.bytes.dropLast()), kind: 2))),
            ("long key", upload(lastResort: prekey(key.bytes + [0], kind: 2))),
            ("not a key (coefficients past the modulus)", upload(lastResort: prekey([UInt8](repeating: 0xFF, count: 1568), kind: 2))),
            ("short signature", upload(lastResort: prekey(key.bytes, kind: 2), oneTime: [short])),
        ]
        for (name, upload) in bad {
            guard case .failure(let error) = RelayRequestProcessor.checkKEMPrekeys(upload, identity: identity.publicKey) else {
                Issue.record("\(name): accepted")
                continue
            }
            #expect(error.code == "bad-request", "\(name)")
        }
    }

    @Test("a Hello of protocol 2 (before PQXDH) is refused UNSUPPORTED_VERSION, naming both versions; 3 is answered")
    func version() throws {
        var hello = WireHello()
        hello.protocolVersion = 2
        let refusal = try #require(RelayRequestProcessor.versionRefusal(hello, id: 7))
        guard case .error(let error)? = refusal.body else { Issue.record("not an error: \(refusal)"); return }
        #expect(refusal.requestID == 7 && error.code == .unsupportedVersion)
        #expect(error.message == "this relay speaks protocol version 3, not 2")
        hello.protocolVersion = 3
        #expect(RelayRequestProcessor.versionRefusal(hello, id: 7) == nil)
    }
}
