import Foundation
import Logging
import ValiseRelay
import Yams

/// The relay's settings: flags first, then `VALISED_*` environment variables, then the YAML
/// file, then the defaults of `RelayConfiguration`, checked strictly against the table in
/// `RelayConfiguration.settings` (an unknown key or a value that does not parse stops the
/// start, naming the key and its source).
struct RelaySettings {
    let effective: RelayConfiguration.Effective

    var relay: RelayConfiguration { effective.relay }
    var logLevel: Logger.Level { Logger.Level(rawValue: effective.logLevel) ?? .info }

    struct Invalid: Error, CustomStringConvertible {
        let description: String
    }

    /// The configuration file is read whole; anything larger than this is not one.
    static let maximumFileBytes = 1 << 20

    static func load(flags: [String: String], configFile: String?) throws -> RelaySettings {
        let file = try configFile.map(readFile) ?? [:]
        do {
            return RelaySettings(effective: try RelayConfiguration.resolve(
                file: file, filePath: configFile, environment: ProcessInfo.processInfo.environment, flags: flags))
        } catch {
            throw Invalid(description: error.description)
        }
    }

    /// The file's settings as dotted keys and their text (`limits: {maxConnections: 10}` →
    /// `limits.maxConnections: "10"`); a list, where the setting takes one
    /// (`RelayConfiguration.listSettings`), as its items joined with commas.
    static func readFile(_ path: String) throws -> [String: String] {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
              attributes[.type] as? FileAttributeType == .typeRegular else {
            throw Invalid(description: "cannot read the configuration file \(path): it does not exist or is not a regular file")
        }
        guard let size = attributes[.size] as? Int, size <= maximumFileBytes,
              let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw Invalid(description: "cannot read the configuration file \(path): larger than 1 MiB or not UTF-8 text")
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw Invalid(description: "the configuration file \(path) is not valid YAML: \(error)")
        }
        guard let root else { return [:] }
        guard let mapping = root.mapping else {
            throw Invalid(description: "the configuration file \(path) must be a mapping of settings (key: value)")
        }
        var values: [String: String] = [:]
        var pending: [(prefix: String, mapping: Node.Mapping)] = [("", mapping)]
        while let (prefix, mapping) = pending.popLast() {
            for (keyNode, value) in mapping {
                guard let name = keyNode.scalar?.string else {
                    throw Invalid(description: "the configuration file \(path) has a key that is not text under '\(prefix)'")
                }
                let key = prefix.isEmpty ? name : prefix + "." + name
                if let nested = value.mapping {
                    pending.append((key, nested))
                    continue
                }
                if let sequence = value.sequence, RelayConfiguration.listSettings.contains(key) {
                    let items = sequence.compactMap { $0.scalar?.string }
                    guard items.count == sequence.count, !items.isEmpty, items.allSatisfy({ !$0.isEmpty && !$0.contains(",") }) else {
                        throw Invalid(description: "\(key) in \(path) must be a list of single values (no commas)")
                    }
                    guard values[key] == nil else { throw Invalid(description: "\(key) is given twice in \(path)") }
                    values[key] = items.joined(separator: ",")
                    continue
                }
                guard let scalar = value.scalar, value.null == nil else {
                    throw Invalid(description: "\(key) in \(path) must have a single value (not empty, not a list)")
                }
                guard values[key] == nil else { throw Invalid(description: "\(key) is given twice in \(path)") }
                values[key] = scalar.string
            }
        }
        return values
    }
}
