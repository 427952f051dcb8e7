public import ValiseCrypto

/// A framing or message-layer violation: the connection is closed with this reason.
public struct FramingError: CodedError {
    public let code: String
    public let message: String

    init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    public static let emptyFrame = FramingError(code: "empty-frame", message: "a frame with length 0")
    static let frameTooLargeCode = "frame-too-large"
    public static func frameTooLarge(limit: Int) -> FramingError {
        FramingError(code: frameTooLargeCode, message: "a frame longer than the \(limit) bytes allowed at this point")
    }
    public static func messageTooLarge(limit: Int) -> FramingError {
        FramingError(code: "message-too-large", message: "a message larger than the \(limit)-byte limit")
    }
    public static let badFragmentHeader = FramingError(code: "bad-fragment", message: "a fragment with an unknown header byte")
    public static let emptyFragment = FramingError(code: "empty-fragment", message: "a transport message without its fragment header")
}
