import GRDB

/// A column that holds what this program never writes: NULL where a value belongs, a value of
/// another type, or a negative time, size or count. Only a damaged page (or a hand-edited
/// file) gives one, so it is reported as a damaged store (`StoreError.Kind.corrupt`). It names
/// the column, never the row's values.
struct DamagedColumn: Error, CustomStringConvertible {
    let column: String
    var description: String { "column \(column) holds a value this program never writes" }
}

/// The readers every row of the relay's and the client's files goes through. GRDB's subscript
/// (`try row.value("size")`) traps on NULL or a value of another type; these throw `DamagedColumn`
/// instead, so a damaged file is refused with a clear error, never a crash.
extension Row {
    /// The value in `column`, of the type asked for (an optional type accepts NULL).
    func value<Value: DatabaseValueConvertible>(_ column: String, as type: Value.Type = Value.self) throws(DamagedColumn) -> Value {
        do { return try decode(Value.self, forColumn: column) } catch { throw DamagedColumn(column: column) }
    }

    /// The value at `index`, of the type asked for (an optional type accepts NULL).
    func value<Value: DatabaseValueConvertible>(_ index: Int, as type: Value.Type = Value.self) throws(DamagedColumn) -> Value {
        guard index >= 0, index < count else { throw DamagedColumn(column: "#\(index)") }
        do { return try decode(Value.self, atIndex: index) } catch { throw DamagedColumn(column: "#\(index)") }
    }

    /// A time, size or count in `column`, stored as a signed 64-bit integer and never negative
    /// when written: one that does not fit `Value` is damage.
    func unsigned<Value: FixedWidthInteger & UnsignedInteger>(_ column: String, as type: Value.Type = Value.self) throws(DamagedColumn) -> Value {
        guard let result = Value(exactly: try value(column, as: Int64.self)) else { throw DamagedColumn(column: column) }
        return result
    }

    /// A time, size or count at `index`; see `unsigned(_:as:)`.
    func unsigned<Value: FixedWidthInteger & UnsignedInteger>(_ index: Int, as type: Value.Type = Value.self) throws(DamagedColumn) -> Value {
        guard let result = Value(exactly: try value(index, as: Int64.self)) else { throw DamagedColumn(column: "#\(index)") }
        return result
    }
}

extension Row {
    /// A time, size or count in `column` that may be NULL; see `unsigned(_:as:)`.
    func unsignedIfPresent<Value: FixedWidthInteger & UnsignedInteger>(_ column: String, as type: Value.Type = Value.self) throws(DamagedColumn) -> Value? {
        guard let stored = try value(column, as: Int64?.self) else { return nil }
        guard let result = Value(exactly: stored) else { throw DamagedColumn(column: column) }
        return result
    }
}
