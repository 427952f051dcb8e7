extension ConnectionRegistry {
    /// Ends the open connections whose admission a stored directory change altered, so that
    /// each device reconnects and learns its role: keys no longer admitted as they were
    /// (revoked, rotated out) hear REVOKED; devices whose home relay moved away from this
    /// relay, or to it, hear NOT_HOME naming their home. Safe to call from any thread, and
    /// for every way entries arrive (a publish, a relay link).
    public func drop(changedBy published: RelayDirectory.Published) {
        if !published.noLongerAdmitted.isEmpty {
            drop(keys: published.noLongerAdmitted, reason: RelayError(
                .revoked, code: "revoked", message: "this key is no longer in the organisation's directory"))
        }
        for (key, message) in published.rehomed {
            drop(keys: [key], reason: RelayError(.notHome, code: "not-home", message: message))
        }
    }
}
