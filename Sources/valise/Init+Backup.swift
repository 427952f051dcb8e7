import ArgumentParser
import ValiseClient
import ValiseCrypto
import ValiseDirectory

extension Valise.Init {
    /// `valise init --from-backup FILE`: a new device for the backed-up member, and the
    /// rotation request that moves the member from the backed-up keys to the new ones.
    func restoreDevice(from file: String, home: ValiseHome) throws {
        let (restored, device, requestPath) = try reportingErrors { () throws(ClientError) -> (DeviceKeystore.Restored, DeviceReport, String) in
            let keystore = DeviceKeystore(home: home)
            if keystore.exists && !force {
                // Say so before asking for passphrases that would not be used.
                throw ClientError(
                    kind: .usage, code: "device-exists",
                    message: "a device keystore already exists at \(keystore.path); use --force to replace it (the old file is kept as a backup)"
                )
            }
            let backupFile = DeviceKeyBackup.file(at: file)
            _ = try backupFile.inspect()
            let backup = try BackupPassphrase.unlocking(file: backupPassphraseFile, path: file) { passphrase throws(ClientError) in
                try backupFile.unlock(passphrase: passphrase).payload
            }
            if let name, try MemberName.argument(name) != backup.memberName {
                throw ClientError.usage("backup-member", "\(file) holds the keys of \(backup.memberName), not of \(name)")
            }
            let passphrase = try Passphrases.new(file: options.passphraseFile, prompt: "New passphrase for \(backup.memberName): ")
            let restored = try keystore.restore(
                from: backup, passphrase: passphrase, parameters: kdfProfile.parameters, force: force, now: Environment.now())
            let requestPath = requestOut ?? home.rotationRequestPath
            try RequestFile.write(restored.request, to: requestPath)
            let report = DeviceReport(identity: restored.identity, path: keystore.path, parameters: kdfProfile.parameters)
            return (restored, report, requestPath)
        }
        if let warning = DeviceReport.weakKeystoreWarning(kdfProfile.parameters) { printWarning(warning) }
        if options.json {
            printJSON(RestoreReport(device: device, oldFingerprint: restored.oldFingerprint.description, request: requestPath))
            return
        }
        print("Created new device keys for \(device.member) from the backup; the backed-up keys signed the rotation request and were not kept.")
        for line in device.lines { print(line) }
        print("replaces fingerprint: \(restored.oldFingerprint)")
        if let kept = restored.backupPath { print("The previous keystore was kept as \(kept)") }
        print("Rotation request written to \(requestPath).")
        print("Give it to your key administrator ('valise admin rotate \(device.member) \(requestPath)'), and read them the new fingerprint by a channel you trust.")
        print("This device is admitted once the directory shows the rotation; the lost device's keys are not, from then on.")
    }

    struct RestoreReport: Encodable {
        let device: DeviceReport
        let oldFingerprint: String
        let request: String
    }
}
