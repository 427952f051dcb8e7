/// What every case reports from its repetitions: medians, and the median of the
/// per-repetition ratios (so that a change in the shared machine's load falls on both sides
/// of a ratio alike).
enum Statistics {
    /// The middle value (the upper of the two middle ones for an even count).
    static func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

    /// The median of `numerators[i] / denominators[i]`, to three decimals.
    static func medianRatio(_ numerators: [Double], _ denominators: [Double]) -> Double {
        (median(zip(numerators, denominators).map { $0 / $1 }) * 1000).rounded() / 1000
    }
}
