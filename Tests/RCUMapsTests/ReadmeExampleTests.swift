import RCUMaps
import Testing

/// The README's usage example, kept compiling and correct.
@Suite("README example")
struct ReadmeExampleTests {
    @Test func readmeExampleWorks() throws {
        let flows = try MapRegistry.create(MapDefinition(type: .hash, keySize: 8, valueSize: 8, maxEntries: 1 << 16))
        var key: UInt64 = 42, value: UInt64 = 7
        var seen: UInt64 = 0
        try withUnsafeBytes(of: &key) { k in
            try withUnsafeBytes(of: &value) { v in try flows.update(key: k, value: v, flags: .noExist) }
            var out: UInt64 = 0
            try withUnsafeMutableBytes(of: &out) { o in try flows.lookup(key: k, into: o) }   // user mode: a copy
            try Epoch.withSection { section throws(MapError) in                                // helper mode: in place
                let stored = try flows.lookupInPlace(key: k, in: section)
                stored.storeBytes(of: out + 1, as: UInt64.self)
            }
            try withUnsafeMutableBytes(of: &seen) { o in try flows.lookup(key: k, into: o) }
        }
        #expect(seen == 8)
    }
}
