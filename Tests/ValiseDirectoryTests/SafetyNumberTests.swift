import Testing
import ValiseCrypto
@testable import ValiseDirectory

@Suite("Safety numbers")
struct SafetyNumberTests {
    let amara = (name: try! MemberName("amara@jakarta"), identityKey: TestKeys.signing("safety/amara").publicKey)
    let bo = (name: try! MemberName("bo@nairobi"), identityKey: TestKeys.signing("safety/bo").publicKey)

    @Test("both members compute the same number")
    func symmetric() {
        #expect(SafetyNumber(amara, bo) == SafetyNumber(bo, amara))
        #expect(SafetyNumber(amara, bo).description == SafetyNumber(bo, amara).description)
    }

    @Test("60 digits, shown as twelve groups of five")
    func format() {
        let number = SafetyNumber(amara, bo)
        #expect(number.digits.count == 60)
        #expect(number.digits.allSatisfy { ("0"..."9").contains($0) })
        let groups = number.description.split(separator: " ")
        #expect(groups.count == 12)
        #expect(groups.allSatisfy { $0.count == 5 })
        #expect(groups.joined() == number.digits)
    }

    @Test("it is the two members' fingerprints, in ascending order")
    func fingerprints() {
        let a = Fingerprint(identityKey: amara.identityKey, memberName: amara.name.value).digits
        let b = Fingerprint(identityKey: bo.identityKey, memberName: bo.name.value).digits
        #expect(SafetyNumber(amara, bo).digits == min(a, b) + max(a, b))
    }

    @Test("it changes when either member's key changes, or a name does")
    func changes() throws {
        let original = SafetyNumber(amara, bo)
        let rotatedAmara = (name: amara.name, identityKey: TestKeys.signing("safety/amara, rotated").publicKey)
        let rotatedBo = (name: bo.name, identityKey: TestKeys.signing("safety/bo, rotated").publicKey)
        let renamed = (name: try MemberName("bo@lagos"), identityKey: bo.identityKey)
        let others = [SafetyNumber(rotatedAmara, bo), SafetyNumber(amara, rotatedBo), SafetyNumber(rotatedAmara, rotatedBo), SafetyNumber(amara, renamed)]
        for other in others {
            #expect(other != original)
        }
        #expect(Set(others.map(\.digits)).count == others.count)
    }
}
