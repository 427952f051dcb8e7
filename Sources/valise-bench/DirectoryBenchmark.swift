import CSodium
import ValiseCrypto
import ValiseDirectory

#if canImport(Glibc)
import Glibc
#endif

/// Verifying a long directory log, as a device does when it pins or re-reads its bundle:
/// decode the log file and verify every entry from the pinned genesis. Compared, in the same
/// run, with the bare libsodium calls the work cannot avoid (one Ed25519 verification per
/// signature, one BLAKE2b per entry).
struct DirectoryBenchmark {
    let entryCount: Int
    let repetitions: Int

    struct Result {
        let entries: Int
        let signaturesPerEntry: Double
        let fileBytes: Int
        let decodeAndVerifySeconds: [Double]
        let decodeSeconds: [Double]
        let sequentialSeconds: [Double]
        let rawLibsodiumSeconds: [Double]
    }

    func run() -> Result {
        let (bytes, genesis, signatures) = makeLog()
        let now = UInt64(time(nil))
        var measured: [Double] = []
        var decodeOnly: [Double] = []
        var sequential: [Double] = []
        var raw: [Double] = []
        for _ in 0..<repetitions {
            decodeOnly.append(Clock.seconds { precondition(try! DirectoryFiles.decodeLog(bytes).count == entryCount) })
            measured.append(Clock.seconds {
                let entries = try! DirectoryFiles.decodeLog(bytes)
                let verifier = try! DirectoryVerifier.verify(entries, pinnedGenesis: genesis, now: now)
                precondition(verifier.count == entryCount)
            })
            // Entry by entry, on one core: what a client pays when entries arrive one by one.
            sequential.append(Clock.seconds {
                let entries = try! DirectoryFiles.decodeLog(bytes)
                var verifier = DirectoryVerifier(pinnedGenesis: genesis)
                for entry in entries { try! verifier.append(entry, now: now) }
                precondition(verifier.count == entryCount)
            })
            raw.append(rawLibsodium(signatures: signatures, hashes: entryCount, messageBytes: bytes.count / entryCount))
        }
        return Result(
            entries: entryCount, signaturesPerEntry: Double(signatures) / Double(entryCount), fileBytes: bytes.count,
            decodeAndVerifySeconds: measured, decodeSeconds: decodeOnly, sequentialSeconds: sequential,
            rawLibsodiumSeconds: raw)
    }

    /// A 1-of-1 organisation: a genesis, then enrollments (each with one admin signature and
    /// the member's own request signature, which the verifier also checks).
    private func makeLog() -> (bytes: [UInt8], genesis: EntryHash, signatures: Int) {
        let admin = SigningKey()
        let genesisBody = Genesis(
            organisation: "Benchmark Ministry",
            admins: AdminSet(admins: [AdminRecord(name: "admin", signingKey: admin.publicKey, transportKey: AgreementPrivateKey().publicKey)], threshold: 1),
            freshness: .standard)
        var entries = [DirectoryEntry(sequence: 0, previousHash: .zero, timestamp: 1_700_000_000, body: .genesis(genesisBody)).signed(by: admin)]
        var signatures = 1
        for index in 1..<entryCount {
            let name = try! MemberName("member\(index)@mission\(index % 50)")
            let request = MemberRequest.enrollment(
                member: name, identityKey: SigningKey(), transportKey: AgreementPrivateKey().publicKey, created: 1_700_000_000)
            let entry = DirectoryEntry(
                sequence: UInt64(index), previousHash: entries[index - 1].hash, timestamp: 1_700_000_000 + UInt64(index),
                body: .enroll(Enrollment(request: request, mission: "Mission \(index % 50)", role: "staff"))
            ).signed(by: admin)
            entries.append(entry)
            signatures += 2
        }
        return (DirectoryFiles.encodeLog(entries), entries[0].hash, signatures)
    }

    /// The same number of Ed25519 verifications and BLAKE2b hashes, straight into libsodium.
    private func rawLibsodium(signatures: Int, hashes: Int, messageBytes: Int) -> Double {
        var pk = [UInt8](repeating: 0, count: 32)
        var sk = [UInt8](repeating: 0, count: 64)
        var sig = [UInt8](repeating: 0, count: 64)
        var digest = [UInt8](repeating: 0, count: 32)
        let message = [UInt8](repeating: 7, count: messageBytes)
        crypto_sign_keypair(&pk, &sk)
        crypto_sign_detached(&sig, nil, message, UInt64(message.count), sk)
        return Clock.seconds {
            var ok = 0
            for _ in 0..<signatures where crypto_sign_verify_detached(sig, message, UInt64(message.count), pk) == 0 { ok += 1 }
            for _ in 0..<hashes { crypto_generichash(&digest, 32, message, UInt64(message.count), nil, 0) }
            precondition(ok == signatures)
        }
    }
}

enum Clock {
    static func seconds(_ body: () -> Void) -> Double {
        var start = timespec()
        var end = timespec()
        clock_gettime(CLOCK_MONOTONIC, &start)
        body()
        clock_gettime(CLOCK_MONOTONIC, &end)
        return Double(end.tv_sec - start.tv_sec) + Double(end.tv_nsec - start.tv_nsec) / 1e9
    }
}
