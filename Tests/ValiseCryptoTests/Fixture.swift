import Foundation
import Testing

/// One published test vector: its fields as strings (hex for bytes, decimal for numbers).
struct Vector: Sendable, CustomTestStringConvertible {
    let fields: [String: String]

    var name: String { fields["name"] ?? "unnamed" }
    var testDescription: String { name }

    func hex(_ key: String) -> [UInt8] {
        guard let text = fields[key], let bytes = hexDecode(text) else {
            fatalError("vector \(name) has no hex field \(key)")
        }
        return bytes
    }

    func int(_ key: String) -> Int {
        guard let text = fields[key], let value = Int(text) else { fatalError("vector \(name) has no integer \(key)") }
        return value
    }

    func string(_ key: String) -> String? { fields[key] }
}

/// Loads `Fixtures/<name>.json` (see Fixtures/SOURCES.md for where each came from).
enum Fixture {
    static func vectors(_ name: String) -> [Vector] {
        guard let url = Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures"),
              let data = try? Data(contentsOf: url),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let list = object["vectors"] as? [[String: Any]] else {
            fatalError("cannot load fixture \(name)")
        }
        return list.map { entry in
            Vector(fields: entry.mapValues { value in
                if let text = value as? String { return text }
                return "\(value)"
            })
        }
    }

    /// A fixture that is one object of strings and numbers rather than a list of vectors.
    static func object(_ name: String) -> [String: String]? {
        guard let url = Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures"),
              let data = try? Data(contentsOf: url),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return object.mapValues { ($0 as? String) ?? "\($0)" }
    }

    static func vectors(_ name: String, kind: String) -> [Vector] {
        vectors(name).filter { $0.string("kind") == kind }
    }
}

func hexDecode(_ text: String) -> [UInt8]? {
    let utf8 = Array(text.utf8)
    guard utf8.count % 2 == 0 else { return nil }
    var out: [UInt8] = []
    var index = 0
    while index < utf8.count {
        guard let byte = UInt8(String(decoding: utf8[index..<index + 2], as: UTF8.self), radix: 16) else { return nil }
        out.append(byte)
        index += 2
    }
    return out
}

/// Flips one bit of `bytes` at `index`.
func flipped(_ bytes: [UInt8], at index: Int) -> [UInt8] {
    var copy = bytes
    copy[index] ^= 0x01
    return copy
}
