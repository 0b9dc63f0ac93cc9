import CRCUMapsBaselines
import ObjectMapProvider
import RCUMaps
import Synchronization

/// Keys: the same scrambled 8-byte keys as `rcumaps bench`, visited in a scrambled order.
enum Keys {
    /// The step-th index into `0..<entries`, in an order that defeats the prefetcher.
    @inline(__always)
    static func index(_ step: Int, _ entries: Int) -> Int {
        Int(truncatingIfNeeded: (UInt64(truncatingIfNeeded: step) &* 0x9E37_79B9_7F4A_7C15) >> 20) % entries
    }
    /// A key that is in the map.
    @inline(__always)
    static func hit(_ step: Int, _ entries: Int) -> UInt64 { key(index(step, entries)) }
    /// A key that is not.
    @inline(__always)
    static func miss(_ step: Int, _ entries: Int) -> UInt64 { key(entries + index(step, entries)) }
    @inline(__always)
    static func key(_ index: Int) -> UInt64 { (UInt64(truncatingIfNeeded: index) &+ 1) &* 0x9E37_79B9_7F4A_7C15 }
}

/// Fixtures are built once per process and shared by the benchmarks that use them.
enum Fixtures {
    private static let cache = Mutex<[String: any AnyObject & Sendable]>([:])

    private static func cached<T: AnyObject & Sendable>(_ name: String, _ make: () -> T) -> T {
        if let found = cache.withLock({ $0[name] }) as? T { return found }
        let made = make()
        cache.withLock { $0[name] = made }
        return made
    }

    /// A prefilled hash map of the concrete type `Map` (the one `implementation` creates), so
    /// that benchmarks call it without existential dispatch, as a user holding the type does.
    static func hash<Map: RawMap>(_ implementation: HashImplementation, as _: Map.Type, entries: Int,
                                  keySize: Int = 8, valueSize: Int = 8) -> HashFixture<Map> {
        cached("hash-\(implementation)-\(entries)-\(keySize)-\(valueSize)") {
            HashFixture<Map>(implementation, entries: entries, keySize: keySize, valueSize: valueSize)
        }
    }
    static func array(entries: Int) -> ArrayFixture { cached("array-\(entries)") { ArrayFixture(entries: entries) } }
    static func cLfht(entries: Int) -> CLfhtFixture { cached("clfht-\(entries)") { CLfhtFixture(entries: entries) } }
    static func cOpenAddressing(entries: Int) -> COpenAddressingFixture {
        cached("coa-\(entries)") { COpenAddressingFixture(entries: entries) }
    }
    static func mutexDictionary(entries: Int) -> MutexDictionaryFixture {
        cached("mutex-\(entries)") { MutexDictionaryFixture(entries: entries) }
    }
    static func swiftArray(entries: Int) -> SwiftArrayFixture { cached("swift-array-\(entries)") { SwiftArrayFixture(entries: entries) } }
    static func objectMap(entries: Int) -> ObjectMapFixture { cached("object-\(entries)") { ObjectMapFixture(entries: entries) } }
}

/// Calls `body` with `count` (≤ 64) zeroed bytes on the stack, 8-byte aligned.
///
/// A fixed-size tuple, where `withUnsafeTemporaryAllocation(byteCount:)` with a run-time
/// size asks the runtime whether the stack can take it on every call: a cost the C
/// baselines, which take their keys by value, do not pay.
@inline(__always)
func withStackBytes<R>(_ count: Int, _ body: (UnsafeMutableRawBufferPointer) -> R) -> R {
    precondition(count <= 64, "the benchmarks' keys and values are at most 64 bytes")
    var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
    return withUnsafeMutableBytes(of: &words) { body(UnsafeMutableRawBufferPointer(rebasing: $0[0..<count])) }
}

/// A hash map (8-byte keys extended with zeros to `keySize`) prefilled with `entries` keys.
///
/// Lookups use `RawMap.inlinedLookupInPlace` / `inlinedLookup`, which compile to the concrete
/// map's inlinable code, as user code that names `RawBucketHashMap` or `RawLockFreeHashMap` gets:
/// Swift 6.3 does not devirtualize a typed-throws protocol requirement (all of `RawMap`'s)
/// called from another module, so through the plain requirement each lookup would pay a
/// metadata access and an indirect call.
final class HashFixture<Map: RawMap>: Sendable {
    let map: Map
    let keySize: Int
    let valueSize: Int

    init(_ implementation: HashImplementation, entries: Int, keySize: Int, valueSize: Int) {
        let created = try! MapRegistry.create(MapDefinition(type: .hash, keySize: keySize, valueSize: valueSize,
                                                            maxEntries: entries * 2, hashImplementation: implementation))
        map = created as! Map
        self.keySize = keySize
        self.valueSize = valueSize
        for index in 0..<entries { insert(Keys.key(index)) }
    }

    /// Calls `body` with `key` zero-extended to `keySize` bytes, on the stack.
    @inline(__always)
    func withKey<R>(_ key: UInt64, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        withStackBytes(keySize) { buffer in
            buffer.storeBytes(of: key, as: UInt64.self)
            return body(UnsafeRawBufferPointer(buffer))
        }
    }

    /// One helper-mode lookup (an epoch section and `lookupInPlace`); 0 on a miss.
    /// 8-byte keys are passed straight from the stack, as the C baselines pass theirs.
    @inline(__always)
    func helperLookup(_ key: UInt64) -> UInt64 {
        if keySize == 8 {
            var key = key
            return withUnsafeBytes(of: &key) { key in
                Epoch.withSection { section in (try? map.inlinedLookupInPlace(key: key, in: section))?.load(as: UInt64.self) ?? 0 }
            }
        }
        return withKey(key) { key in
            Epoch.withSection { section in (try? map.inlinedLookupInPlace(key: key, in: section))?.load(as: UInt64.self) ?? 0 }
        }
    }

    /// One user-mode lookup (a copy of the value); 0 on a miss.
    @inline(__always)
    func userLookup(_ key: UInt64) -> UInt64 {
        return withKey(key) { key in
            withStackBytes(valueSize) { value in
                (try? map.inlinedLookup(key: key, into: value)) != nil ? value.load(as: UInt64.self) : 0
            }
        }
    }

    func update(_ key: UInt64, _ value: UInt64, flags: MapUpdateFlags = .any) {
        withKey(key) { key in
            withStackBytes(valueSize) { buffer in
                buffer.storeBytes(of: value, as: UInt64.self)
                _ = try? map.update(key: key, value: UnsafeRawBufferPointer(buffer), flags: flags)
            }
        }
    }

    func insert(_ key: UInt64) { update(key, key, flags: .noExist) }
    func delete(_ key: UInt64) { withKey(key) { key in _ = try? map.delete(key: key) } }

    /// One full get-next-key pass; returns the number of keys.
    func iterate() -> Int {
        var count = 0
        withUnsafeTemporaryAllocation(byteCount: keySize * 2, alignment: 8) { buffer in
            let current = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<keySize])
            let next = UnsafeMutableRawBufferPointer(rebasing: buffer[keySize...])
            var cursor: UnsafeRawBufferPointer? = nil
            while (try? map.nextKey(after: cursor, into: next)) != nil {
                current.copyMemory(from: UnsafeRawBufferPointer(next))
                cursor = UnsafeRawBufferPointer(current)
                count += 1
            }
        }
        return count
    }
}

final class ArrayFixture: Sendable {
    let map: RawArrayMap
    init(entries: Int) {
        map = try! RawArrayMap(MapDefinition(type: .array, keySize: 4, valueSize: 8, maxEntries: entries))
    }
    /// User-mode lookup (a copy): an array needs no epoch section, as `rcumaps bench` reads it.
    @inline(__always)
    func lookup(_ index: UInt32) -> UInt64? {
        withUnsafeBytes(of: index) { key in
            var value: UInt64 = 0
            let found = withUnsafeMutableBytes(of: &value) { (try? map.lookup(key: key, into: $0)) != nil }
            return found ? value : nil
        }
    }
}

final class CLfhtFixture: @unchecked Sendable {
    // @unchecked: rculfhash is safe for concurrent use; the pointer never changes.
    let table: UnsafeMutablePointer<rcumaps_baseline_lfht_t>
    init(entries: Int) {
        table = rcumaps_baseline_lfht_create(entries * 2)!
        for index in 0..<entries { _ = rcumaps_baseline_lfht_insert(table, Keys.key(index), UInt64(index)) }
    }
}

final class COpenAddressingFixture: @unchecked Sendable {
    // @unchecked: filled once, then only read.
    let table: UnsafeMutablePointer<rcumaps_baseline_oa_t>
    init(entries: Int) {
        table = rcumaps_baseline_oa_create(entries)!
        for index in 0..<entries { _ = rcumaps_baseline_oa_insert(table, Keys.key(index), UInt64(index)) }
    }
}

final class MutexDictionaryFixture: Sendable {
    let storage: Mutex<[UInt64: UInt64]>
    init(entries: Int) {
        var dictionary: [UInt64: UInt64] = [:]
        for index in 0..<entries { dictionary[Keys.key(index)] = UInt64(index) }
        storage = Mutex(dictionary)
    }
}

final class SwiftArrayFixture: Sendable {
    let values: [UInt64]
    init(entries: Int) { values = (0..<entries).map { UInt64($0) } }
}

final class ObjectMapFixture: Sendable {
    let map: RawCustomMap
    init(entries: Int) {
        let provider = try! ObjectMapProvider(type: MapType(rawValue: 4300), base: .hashBucketLocked)
        map = try! provider.makeMap(maxEntries: entries)
        let handles = (0..<64).map { _ in try! provider.makeObject() }
        for index in 0..<entries {
            var key = UInt32(index)
            var handle = handles[index % handles.count]
            withUnsafeBytes(of: &key) { key in
                withUnsafeBytes(of: &handle) { value in _ = try? map.update(key: key, value: value, flags: .any) }
            }
        }
    }
    @inline(__always)
    func lookup(_ index: UInt32) -> UInt32? {
        withUnsafeBytes(of: index) { key in
            var handle: UInt32 = 0
            let found = withUnsafeMutableBytes(of: &handle) { out in (try? map.lookup(key: key, into: out)) != nil }
            return found ? handle : nil
        }
    }
}
