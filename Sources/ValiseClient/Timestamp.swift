/// Times for file names and output, without Foundation.
public enum Timestamp {
    /// `20261126T081500Z`.
    public static func compact(_ seconds: UInt64) -> String {
        let (y, mo, d, h, mi, s) = civil(seconds)
        return "\(pad(y, 4))\(pad(mo))\(pad(d))T\(pad(h))\(pad(mi))\(pad(s))Z"
    }

    /// A duration as people and the `--expires` style options write it: `7d`, `48h`, `30m`, `90s`.
    public static func duration(_ seconds: UInt32) -> String {
        if seconds % 86_400 == 0 { return "\(seconds / 86_400)d" }
        if seconds % 3600 == 0 { return "\(seconds / 3600)h" }
        if seconds % 60 == 0 { return "\(seconds / 60)m" }
        return "\(seconds)s"
    }

    /// `2026-11-26T08:15:00Z` (RFC 3339, UTC).
    public static func rfc3339(_ seconds: UInt64) -> String {
        let (y, mo, d, h, mi, s) = civil(seconds)
        return "\(pad(y, 4))-\(pad(mo))-\(pad(d))T\(pad(h)):\(pad(mi)):\(pad(s))Z"
    }

    /// Days-to-civil conversion (Howard Hinnant's algorithm), for the proleptic Gregorian calendar.
    static func civil(_ seconds: UInt64) -> (Int, Int, Int, Int, Int, Int) {
        let days = Int(seconds / 86_400)
        let rest = Int(seconds % 86_400)
        let z = days + 719_468
        let era = z / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day, rest / 3600, rest % 3600 / 60, rest % 60)
    }

    private static func pad(_ value: Int, _ width: Int = 2) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }
}
