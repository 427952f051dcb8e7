import GRDB
import GRDBSQLite

/// One of GRDB's cached statements, bound and stepped through SQLite's C API.
///
/// For the queue's per-envelope statements only, inside a GRDB write transaction: profiled
/// under load, GRDB's `StatementArguments` (boxing every value as a `DatabaseValue`, copying
/// blobs into `Data`) and its per-execution bookkeeping cost the group-commit writer as much
/// as SQLite's own work, and the writer is what bounds the relay's throughput. GRDB documents
/// its raw pointers (`Statement.sqliteStatement`) for this; the statement is left reset after
/// every use, so GRDB can use it again. No transaction observer watches these tables.
struct BoundStatement {
    private let handle: SQLiteStatement
    private let connection: SQLiteConnection?

    init(_ statement: Statement, in db: Database) {
        handle = statement.sqliteStatement
        connection = db.sqliteConnection
    }

    /// SQLite copies what it is given (`SQLITE_TRANSIENT`), so nothing needs to outlive a bind.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    func bind(_ index: Int32, _ value: Int64) {
        sqlite3_bind_int64(handle, index, value)
    }

    func bind(_ index: Int32, _ text: String) {
        var text = text
        text.withUTF8 { utf8 in
            _ = utf8.withMemoryRebound(to: CChar.self) { chars in
                if let start = chars.baseAddress {
                    sqlite3_bind_text(handle, index, start, Int32(chars.count), Self.transient)
                } else {
                    // An empty string has no buffer; a null pointer would bind NULL, not "".
                    sqlite3_bind_text(handle, index, "", 0, Self.transient)
                }
            }
        }
    }

    func bind(_ index: Int32, _ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            // A zero-length blob, not NULL: SQLite reads a null pointer as NULL.
            _ = sqlite3_bind_blob(handle, index, raw.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(raw.count), Self.transient)
        }
    }

    /// Runs the statement to its next row: true if there is one (read it with `int64(_:)`
    /// and `text(_:)` before the next `step` or `reset`), false when it is done.
    private func step() throws -> Bool {
        switch sqlite3_step(handle) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        case let code:
            let message = connection.flatMap { sqlite3_errmsg($0) }.map { String(cString: $0) }
            sqlite3_reset(handle)
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: message)
        }
    }

    func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }

    func text(_ column: Int32) -> String {
        guard let bytes = sqlite3_column_text(handle, column) else { return "" }
        return String(cString: bytes)
    }

    /// Back to the start, bindings cleared, ready for GRDB or for the next bind.
    private func reset() {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    /// The first row, read by `read`, or nil when there is none; then the statement runs to
    /// its end (a `DELETE … RETURNING` finishes its work only then) and is reset.
    func firstRow<T>(_ read: (BoundStatement) -> T) throws -> T? {
        defer { reset() }
        guard try step() else { return nil }
        let value = read(self)
        while try step() {}
        return value
    }

    /// Steps to completion and resets, for statements that return no rows.
    func run() throws {
        defer { reset() }
        while try step() {}
    }
}
