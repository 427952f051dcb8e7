/// Bytes from disk or the network that do not parse. Every stored or sent format is read
/// through `ByteReader`, which checks every length before it reads.
public struct FormatError: CodedError {
    public let code: String
    public let message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }


    public static func truncated(_ what: String) -> FormatError {
        FormatError(code: "truncated", message: "\(what) is truncated")
    }
    public static func trailingBytes(_ what: String) -> FormatError {
        FormatError(code: "trailing-bytes", message: "\(what) has unexpected bytes at its end")
    }
    public static func invalid(_ what: String, _ reason: String) -> FormatError {
        FormatError(code: "invalid", message: "\(what): \(reason)")
    }
    public static func unsupportedVersion(_ what: String, _ version: Int) -> FormatError {
        FormatError(code: "unsupported-version", message: "\(what) has version \(version), which this program does not support")
    }
}
