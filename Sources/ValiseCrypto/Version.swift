/// The version of Valise, shown by `valise --version` and `valised --version`.
public enum ValiseVersion {
    public static let string = "0.1.0"
}
