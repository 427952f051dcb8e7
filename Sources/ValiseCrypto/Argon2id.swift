import CSodium

/// Argon2id parameters for turning a passphrase into a key. They are stored beside whatever
/// they protect, so they can rise over time without breaking old files.
public struct PasswordKDFParameters: Hashable, Sendable, CustomStringConvertible {
    /// A named set of parameters. The name is recorded in the file so that a weak profile
    /// can never pass for the real one.
    public enum Profile: UInt8, Sendable, CaseIterable {
        /// Production: 256 MiB and about a second on the reference machine.
        case standard = 0
        /// Trivially fast and insecure: only for automated tests, and reported as such.
        case insecureTest = 1

        public var name: String {
            switch self {
            case .standard: "standard"
            case .insecureTest: "insecure-test"
            }
        }

        public init?(name: String) {
            guard let profile = Self.allCases.first(where: { $0.name == name }) else { return nil }
            self = profile
        }
    }

    public let profile: Profile
    /// Argon2's t (libsodium's opslimit).
    public let iterations: UInt32
    /// Argon2's m, in KiB (libsodium's memlimit is this times 1024).
    public let memoryKiB: UInt32

    /// 256 MiB and t = 8: 0.8 to 1.1 s on the reference machine (2 cores, 2026-11).
    public static let standard = PasswordKDFParameters(profile: .standard, iterations: 8, memoryKiB: 256 * 1024)
    /// libsodium's minimum: t = 1, m = 8 KiB. Offers no protection at all.
    public static let insecureTest = PasswordKDFParameters(profile: .insecureTest, iterations: 1, memoryKiB: 8)

    /// What a file may ask for: enough to allow parameters to rise, bounded so that a
    /// hostile file cannot make unlocking take hours or all memory.
    public static let allowedIterations: ClosedRange<UInt32> = 1...256
    public static let allowedMemoryKiB: ClosedRange<UInt32> = 8...(4 * 1024 * 1024)

    public init(profile: Profile, iterations: UInt32, memoryKiB: UInt32) {
        self.profile = profile
        self.iterations = iterations
        self.memoryKiB = memoryKiB
    }

    public static func forProfile(_ profile: Profile) -> PasswordKDFParameters {
        switch profile {
        case .standard: .standard
        case .insecureTest: .insecureTest
        }
    }

    /// Whether these are within the bounds a file may ask for.
    public var isAllowed: Bool {
        Self.allowedIterations.contains(iterations) && Self.allowedMemoryKiB.contains(memoryKiB)
    }

    /// Whether these are at least as strong as the standard profile; anything else is
    /// reported to the user.
    public var meetsStandard: Bool {
        profile == .standard && iterations >= Self.standard.iterations && memoryKiB >= Self.standard.memoryKiB
    }

    public var description: String {
        let memory = memoryKiB % 1024 == 0 ? "\(memoryKiB / 1024) MiB" : "\(memoryKiB) KiB"
        return "Argon2id \(profile.name) (t=\(iterations), m=\(memory), p=1)"
    }
}

/// Argon2id v1.3 (RFC 9106) through libsodium's `crypto_pwhash`, which fixes parallelism
/// at 1.
public enum Argon2id {
    public static let saltByteCount = Int(crypto_pwhash_SALTBYTES)

    /// Derives a 32-byte key from `passphrase` and `salt`.
    public static func deriveKey(
        passphrase: SecretBytes, salt: [UInt8], parameters: PasswordKDFParameters
    ) throws(CryptoError) -> SymmetricKey {
        guard salt.count == saltByteCount else {
            throw .invalidLength("Argon2id salt", expected: saltByteCount, actual: salt.count)
        }
        guard parameters.isAllowed else {
            throw .invalidParameter("Argon2id parameters out of range: \(parameters)")
        }
        Sodium.ensureInitialised()
        let key = try SecretBytes(count: SymmetricKey.byteCount) { (out) throws(CryptoError) in
            let rc = withBytes(passphrase) { p, plen in
                withBytes(salt) { s, _ in
                    p.withMemoryRebound(to: CChar.self, capacity: max(plen, 1)) { password in
                        crypto_pwhash(
                            out.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt64(out.count),
                            password, UInt64(plen), s,
                            UInt64(parameters.iterations), Int(parameters.memoryKiB) * 1024,
                            crypto_pwhash_ALG_ARGON2ID13
                        )
                    }
                }
            }
            try Sodium.check(rc, .passwordHashingFailed)
        }
        return try SymmetricKey(key)
    }
}
