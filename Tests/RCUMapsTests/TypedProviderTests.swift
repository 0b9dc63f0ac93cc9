@testable import ObjectMapProvider
import RCUMaps
import RCUMapsTestSupport
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Records what a typed provider hears.
final class RemovalLog: Sendable {
    let entries = ThreadLock<[(key: UInt32, stored: UInt64, reason: RemovalReason)]>([])
    func record(_ key: UInt32, _ stored: UInt64, _ reason: RemovalReason) {
        entries.withLock { $0.append((key, stored, reason)) }
    }
    var reasons: [RemovalReason] { entries.withLock { $0.map(\.reason) } }
}

/// A 16-byte value: a bucket-locked base keeps it in a slot of its own, which a replace
/// retires (values of at most 8 bytes are exchanged in place as one word).
struct WidePair: BitwiseCopyable, Sendable, Equatable {
    var first: UInt64
    var second: UInt64
}

final class WideRemovalLog: Sendable {
    let removed = ThreadLock<[WidePair]>([])
}

/// Validating and changing nothing; records each value it is told was removed.
struct WidePassingProvider: TypedMapProvider {
    typealias Key = UInt32
    typealias Value = WidePair
    static var mode: TypedProviderMode { .validating }
    let log: WideRemovalLog

    func validate(_ value: inout WidePair, forKey key: UInt32, context: NoProviderContext) throws(MapError) {}

    func removed(_ stored: WidePair, forKey key: UInt32, reason: RemovalReason, context: NoProviderContext) {
        log.removed.withLock { $0.append(stored) }
    }
}

/// Validating: clamps values to a limit, refuses 0; keeps in-place access.
struct ClampingProvider: TypedMapProvider {
    typealias Key = UInt32
    typealias Value = UInt64
    static var mode: TypedProviderMode { .validating }
    let log: RemovalLog
    let limit: UInt64 = 1_000

    func validate(_ value: inout UInt64, forKey key: UInt32, context: NoProviderContext) throws(MapError) {
        guard value != 0 else { throw MapError.invalidArgument.with(reason: "zero is not a limit") }
        value = Swift.min(value, limit)
    }

    func removed(_ stored: UInt64, forKey key: UInt32, reason: RemovalReason, context: NoProviderContext) {
        log.record(key, stored, reason)
    }
}

/// Transforming: stores values complemented, with a per-map context counting maps.
struct ComplementingProvider: TypedMapProvider {
    typealias Key = UInt32
    typealias Value = UInt64
    final class Context: Sendable {
        let maxEntries: Int
        init(maxEntries: Int) { self.maxEntries = maxEntries }
    }
    static var mode: TypedProviderMode { .transforming }
    let log: RemovalLog
    let counter = ContextCounter()
    final class ContextCounter: Sendable { let live = Atomic<Int>(0) }

    func makeContext(maxEntries: Int) throws(MapError) -> Context {
        counter.live.add(1, ordering: .relaxed)
        return Context(maxEntries: maxEntries)
    }
    func destroyContext(_ context: Context) { counter.live.subtract(1, ordering: .relaxed) }
    func store(_ value: UInt64, forKey key: UInt32, context: Context) throws(MapError) -> UInt64 { ~value }
    func load(_ stored: UInt64, forKey key: UInt32, context: Context) throws(MapError) -> UInt64 { ~stored }
    func removed(_ stored: UInt64, forKey key: UInt32, reason: RemovalReason, context: Context) {
        log.record(key, ~stored, reason)
    }
}

/// Transforming by the key: stores `value ^ key`, so an answer translated with the wrong key
/// is wrong (reliability.md row 297).
struct KeyedXorProvider: TypedMapProvider {
    typealias Key = UInt64
    typealias Value = UInt64
    static var mode: TypedProviderMode { .transforming }
    func store(_ value: UInt64, forKey key: UInt64, context: NoProviderContext) throws(MapError) -> UInt64 { value ^ key }
    func load(_ stored: UInt64, forKey key: UInt64, context: NoProviderContext) throws(MapError) -> UInt64 { stored ^ key }
}

@Suite("Typed providers")
struct TypedProviderTests {
    /// A byte-level lookup and exchange through one buffer for the key and the answer
    /// (`lookup(fd, &x, &x)`) on a provider that translates by the key: both answer with the
    /// key's own value. The buffer was zeroed before the key was read: the exchange's old
    /// value came back translated with key 0 (127 for 111 under key 0x10), and the lookup
    /// looked key 0 up (found by review, 2026-12-06, twenty-ninth session).
    @Test(arguments: [ProviderBaseMap.hashBucketLocked, .hashLockFree])
    func oneBufferForKeyAndAnswerTranslatesWithTheKey(_ base: ProviderBaseMap) throws {
        let registry = MapProviderRegistry()
        let registration = try registry.register(KeyedXorProvider(), type: MapType(rawValue: 4204), base: base)
        do {
            let map = try registration.makeMap(maxEntries: 8)
            try map.updateValue(5, forKey: 0)
            try map.updateValue(111, forKey: 0x10)
            var shared: UInt64 = 0x10
            try withUnsafeMutableBytes(of: &shared) { bytes in
                try map.raw.lookup(key: UnsafeRawBufferPointer(bytes), into: bytes)
            }
            #expect(shared == 111)
            shared = 0x10
            let replaced = try withUnsafeBytes(of: UInt64(222)) { newValue in
                try withUnsafeMutableBytes(of: &shared) { bytes in
                    try map.raw.exchange(key: UnsafeRawBufferPointer(bytes), value: newValue, flags: .any, into: bytes)
                }
            }
            #expect(replaced)
            #expect(shared == 111)
            #expect(try map[0x10] == 222)
            #expect(try map[0] == 5)
        }
        try registration.unregister()
    }

    @Test(arguments: [ProviderBaseMap.hashBucketLocked, .hashLockFree])
    func validatingProvidersCheckAndClampKeepingInPlaceAccess(_ base: ProviderBaseMap) throws {
        let log = RemovalLog()
        // A registry of the test's own: type 4200 may be registered by other tests at once.
        let registry = MapProviderRegistry()
        let registration = try registry.register(ClampingProvider(log: log), type: MapType(rawValue: 4200), base: base)
        do {
            let limits = try registration.makeMap(maxEntries: 16)
            try limits.updateValue(50, forKey: 1)
            try limits.updateValue(5_000, forKey: 2)   // clamped
            #expect(try limits[1] == 50 && limits[2] == 1_000)
            #expect(throws: MapError.invalidArgument) { try limits.updateValue(0, forKey: 3) }
            #expect(try limits[3] == nil)
            // In place: the stored form is the user form.
            #expect(try limits.withValue(forKey: 1) { (value: inout UInt64) -> UInt64 in value += 1; return value } == 51)
            #expect(try limits.updateValue(7, forKey: 1) == 51)
            #expect(try limits.removeValue(forKey: 2) == 1_000)
        }
        // replaced (51), deleted (1000), then teardown (7).
        #expect(log.reasons == [.replaced, .deleted, .teardown])
        #expect(log.entries.withLock { $0.map(\.stored) } == [51, 1_000, 7])
        try registration.unregister()
    }

    /// A custom map has the in-place family of the built-in maps: `upsert`, the forms that
    /// take the caller's section, and `forEachInPlace` (found missing by review,
    /// 2026-12-05, sixteenth session); a transforming provider's map refuses each with
    /// ENOTSUP before anything is written.
    @Test(arguments: [ProviderBaseMap.hashBucketLocked, .hashLockFree, .array])
    func customMapsUpsertAndWorkInPlace(_ base: ProviderBaseMap) throws {
        let registry = MapProviderRegistry()
        let registration = try registry.register(ClampingProvider(log: RemovalLog()), type: MapType(rawValue: 4202), base: base)
        do {
            let map = try registration.makeMap(maxEntries: 8)
            // Every slot of an array exists (zeroed): there the default is never inserted.
            let (first, second): (UInt64, UInt64) = base == .array ? (0, 0) : (10, 20)
            #expect(try map.upsert(forKey: 1, default: 10) { (value: inout UInt64) -> UInt64 in value += 1; return value } == first + 1)
            #expect(try map.upsert(forKey: 1, default: 10) { (value: inout UInt64) -> UInt64 in value += 1; return value } == first + 2)
            try map.upsertAtomicFields(forKey: 2, default: 20) { $0[\.self].wrappingAdd(5, ordering: .relaxed) }
            #expect(try map[2] == second + 5)
            let seen = try Epoch.withSection { (section) throws -> UInt64? in
                try map.withValue(forKey: 1, in: section) { (value: inout UInt64) -> UInt64 in value *= 2; return value }
            }
            #expect(seen == 2 * (first + 2))
            _ = try Epoch.withSection { (section) throws -> Void? in
                try map.withAtomicFields(forKey: 2, in: section) { $0[\.self].wrappingAdd(1, ordering: .relaxed) }
            }
            #expect(try map[2] == second + 6)
            // In place the stored form is the user form: the provider's clamp (1,000) is not
            // applied to writes through the pointer, only to updates.
            try map.forEachInPlace { key, value in if key < 3 { value += 100 } }
            #expect(try map[1] == 2 * (first + 2) + 100 && map[2] == second + 106)
            if base != .array {
                var removed = 0
                try map.forEachInPlace { key, _ in if try map.removeValue(forKey: key) != nil { removed += 1 } }
                #expect(removed == 2 && map.count == 0)
            }
        }
        try registration.unregister()

        let transforming = try registry.register(ComplementingProvider(log: RemovalLog()), type: MapType(rawValue: 4203),
                                                 base: base)
        do {
            let map = try transforming.makeMap(maxEntries: 8)
            #expect(throws: MapError.notSupported) { try map.upsert(forKey: 1, default: 10) { $0 += 1 } }
            // Refused before the pass, so on a map with no entry too.
            #expect(throws: MapError.notSupported) { try map.forEachInPlace { _, value in value = 0 } }
            if base != .array { #expect(try map[1] == nil) }
            try map.updateValue(3, forKey: 1)
            #expect(throws: MapError.notSupported) { try map.forEachInPlace { _, value in value = 0 } }
            #expect(try map[1] == 3)
        }
        try transforming.unregister()
    }

    /// A typed view of a custom map that programs may not write (`BPF_F_RDONLY_PROG`) is
    /// refused, as the other typed views refuse one: its in-place closures write through
    /// helper-mode pointers (found by review, 2026-12-05: `withValue` wrote such a map).
    @Test func aViewOfAMapProgramsMayNotWriteIsRefused() throws {
        let registry = MapProviderRegistry()
        let registration = try registry.register(ClampingProvider(log: RemovalLog()), type: MapType(rawValue: 4201),
                                                 base: .hashBucketLocked)
        do {
            let raw = try registry.createMap(MapDefinition(type: registration.type, keySize: 4, valueSize: 8,
                                                           maxEntries: 8, flags: .readOnlyProgram))
            try raw.put(UInt32(1), UInt64(5))  // user mode may write it
            do {
                let view = try CustomMap<UInt32, UInt64>(wrapping: raw)
                _ = try view.withValue(forKey: 1) { $0 = 99 }
                Issue.record("a typed view of a BPF_F_RDONLY_PROG map was made (value now \(try raw.get(UInt32(1), as: UInt64.self)))")
            } catch let error as MapError {
                #expect(error == .invalidArgument && error.reason?.contains("BPF_F_RDONLY_PROG") == true, "\(error)")
            }
            #expect(try raw.get(UInt32(1), as: UInt64.self) == 5)
        }
        try registration.unregister()
    }

    @Test func transformingProvidersTranslateBothWaysAndBlockInPlace() throws {
        let log = RemovalLog()
        let registry = MapProviderRegistry()
        let provider = ComplementingProvider(log: log)
        let registration = try registry.register(provider, type: MapType(rawValue: 4200), base: .hashBucketLocked)
        do {
            let map = try registration.makeMap(maxEntries: 4)
            #expect(provider.counter.live.load(ordering: .relaxed) == 1)
            try map.updateValue(1, forKey: 10)
            #expect(try map[10] == 1)
            #expect(try map.raw.get(UInt32(10), as: UInt64.self) == 1)   // user-mode byte lookups translate too
            #expect(try map.updateValue(2, forKey: 10) == 1)            // the displaced value, translated
            #expect(throws: MapError.notSupported) { try map.withValue(forKey: 10) { $0 += 1 } }
            // A full map: the addition was accepted, the base update failed → rolled back.
            for key in UInt32(20)..<23 { try map.updateValue(UInt64(key), forKey: key) }
            #expect(throws: MapError.outOfSpace) { try map.updateValue(99, forKey: 30) }
        }
        #expect(provider.counter.live.load(ordering: .relaxed) == 0)
        let reasons = log.reasons
        #expect(reasons.first == .replaced)
        #expect(reasons.contains(.rolledBack))
        #expect(reasons.filter { $0 == .teardown }.count == 4)
        #expect(log.entries.withLock { $0.first { $0.reason == .rolledBack }?.stored } == 99)
    }

    /// The hooks read keys and values as the provider's types: a map of the type made with
    /// other sizes (through `CustomMap` of other types, or a byte-level definition) is
    /// refused, instead of having its keys and values read and written out of bounds.
    @Test func mapsWithOtherSizesThanTheProvidersAreRefused() throws {
        let registry = MapProviderRegistry()
        let log = RemovalLog()
        let type = MapType(rawValue: 4200)
        let registration = try registry.register(ComplementingProvider(log: log), type: type, base: .hashBucketLocked)
        let provider = registration.provider
        #expect(throws: MapError.invalidArgument) {
            _ = try CustomMap<UInt8, UInt64>(type: type, maxEntries: 4, registry: registry)   // 1-byte keys
        }
        #expect(throws: MapError.invalidArgument) {
            _ = try CustomMap<UInt32, UInt8>(type: type, maxEntries: 4, registry: registry)   // 1-byte values
        }
        #expect(throws: MapError.invalidArgument) {
            _ = try registry.createMap(MapDefinition(type: type, keySize: 16, valueSize: 8, maxEntries: 4))
        }
        // A refused map left nothing behind: no context, and the type can be unregistered.
        #expect(provider.counter.live.load(ordering: .relaxed) == 0)
        let map = try registration.makeMap(maxEntries: 4)
        try map.updateValue(7, forKey: 1)
        #expect(try map[1] == 7)
    }

    /// A typed provider's maps are viewed with its own `Key` and `Value` types, not any of the
    /// same sizes: a `UInt8` view of a provider's `Bool` values would read bytes other than 0
    /// and 1 as `Bool` (found by review). Byte-level access by sizes still works.
    @Test func typedViewsOfOtherTypesOfTheSameSizesAreRefused() throws {
        struct Flags: TypedMapProvider {
            typealias Key = UInt32
            typealias Value = Bool
            static var mode: TypedProviderMode { .observing }
            let contexts = ContextCount()
            final class ContextCount: Sendable { let made = Atomic<Int>(0) }
            func makeContext(maxEntries: Int) throws(MapError) -> NoProviderContext {
                contexts.made.add(1, ordering: .relaxed)
                return NoProviderContext()
            }
        }
        let registry = MapProviderRegistry()
        let type = MapType(rawValue: 4202)
        let registration = try registry.register(Flags(), type: type, base: .hashBucketLocked)
        #expect(throws: MapError.invalidArgument) {
            _ = try CustomMap<UInt32, UInt8>(type: type, maxEntries: 4, registry: registry)   // same sizes
        }
        #expect(throws: MapError.invalidArgument) {
            _ = try CustomMap<Int32, Bool>(type: type, maxEntries: 4, registry: registry)
        }
        // Refused before the provider was asked for a context.
        #expect(registration.provider.contexts.made.load(ordering: .relaxed) == 0)
        let flags = try registration.makeMap(maxEntries: 4)
        try flags.updateValue(true, forKey: 1)
        #expect(throws: MapError.invalidArgument) { _ = try CustomMap<UInt32, UInt8>(wrapping: flags.raw) }
        #expect(try CustomMap<UInt32, Bool>(wrapping: flags.raw)[1] == true)
        // Byte-level maps of the type are made and read by size.
        let bytes = try registry.createMap(MapDefinition(type: type, keySize: 4, valueSize: 1, maxEntries: 4))
        try bytes.put(UInt32(2), UInt8(1))
        #expect(try bytes.get(UInt32(2), as: UInt8.self) == 1)
        #expect(try flags.raw.get(UInt32(1), as: UInt8.self) == 1)
    }

    /// Outside the transforming mode the map stores user values as they are, and the
    /// removal hook reads them as `Stored`: a `Stored` of another type, even of the same
    /// size, is refused at registration.
    @Test func storedMustBeValueOutsideTheTransformingMode() throws {
        struct Reinterpreting: TypedMapProvider {
            typealias Key = UInt32
            typealias Value = UInt8
            typealias Stored = Bool
            static var mode: TypedProviderMode { .observing }
            func store(_ value: UInt8, forKey key: UInt32, context: NoProviderContext) throws(MapError) -> Bool { value != 0 }
            func load(_ stored: Bool, forKey key: UInt32, context: NoProviderContext) throws(MapError) -> UInt8 { stored ? 1 : 0 }
        }
        let registry = MapProviderRegistry()
        #expect(throws: MapError.invalidArgument) {
            _ = try registry.register(Reinterpreting(), type: MapType(rawValue: 4201), base: .hashBucketLocked)
        }
        #expect(!registry.isRegistered(MapType(rawValue: 4201)))
    }

    /// Two registries hold the same type ID without colliding; MapRegistry.create sees only
    /// the shared one.
    @Test func scopedRegistriesAreIndependent() throws {
        let first = MapProviderRegistry()
        let second = MapProviderRegistry()
        let type = MapType(rawValue: 4242)
        let a = try first.register(ClampingProvider(log: RemovalLog()), type: type, base: .hashBucketLocked)
        let b = try second.register(ComplementingProvider(log: RemovalLog()), type: type, base: .hashLockFree)
        #expect(throws: MapError.alreadyExists) { _ = try first.register(ClampingProvider(log: RemovalLog()), type: type, base: .array) }
        #expect(!MapProviderRegistry.shared.isRegistered(type))
        #expect(throws: MapError.invalidArgument) {
            _ = try MapRegistry.create(MapDefinition(type: type, keySize: 4, valueSize: 8, maxEntries: 4))
        }
        #expect(try a.makeMap(maxEntries: 4).raw.baseKind == .hashBucketLocked)
        #expect(try b.makeMap(maxEntries: 4).raw.baseKind == .hashLockFree)
        try a.unregister()
        try b.unregister()
    }

    @Test func objectMapHoldsOneReferencePerEntry() throws {
        let census = Census()
        do {
            let objects = try ObjectMap<UInt32, Tracked>(maxEntries: 8)
            try objects.updateValue(Tracked(1, census), forKey: 1)
            #expect(objects[1]?.id == 1)
            let replaced = try objects.updateValue(Tracked(2, census), forKey: 1)
            #expect(replaced?.id == 1 && replaced?.isIntact == true)
            #expect(try objects.insertIfAbsent(Tracked(3, census), forKey: 3))
            #expect(try !objects.insertIfAbsent(Tracked(4, census), forKey: 3))
            #expect(try objects.removeValue(forKey: 3)?.id == 3)
            #expect(objects[3] == nil)
            #expect(objects.count == 1)
            // A full map takes no reference on failure.
            for key in UInt32(10)..<17 { try objects.updateValue(Tracked(Int(key), census), forKey: key) }
            #expect(throws: MapError.outOfSpace) { try objects.updateValue(Tracked(99, census), forKey: 99) }
        }
        Epoch.barrier()
        Epoch.barrier()
        #expect(census.alive.load(ordering: .relaxed) == 0)
        #expect(census.created.load(ordering: .relaxed) == census.deinitialized.load(ordering: .relaxed))
    }

    #if DEBUG
    /// A custom map's `removeValue` returns the value as it left the map, the one its
    /// provider is told was removed: an in-place add (helper mode, no lock) that lands
    /// between the find callback and the unlink is in both. The caller's copy was taken in
    /// the find callback's place, before the unlink, so it missed an add the provider saw
    /// (found by review, 2026-12-06). The base's debug hook adds just before the unlink.
    @Test func aCustomMapsRemovalReturnsWhatItsProviderIsTold() throws {
        let log = RemovalLog()
        let registry = MapProviderRegistry()
        let registration = try registry.register(ClampingProvider(log: log), type: MapType(rawValue: 4203),
                                                 base: .hashBucketLocked)
        do {
            let limits = try registration.makeMap(maxEntries: 16)
            try limits.updateValue(10, forKey: 1)
            let bucket = try #require(limits.raw.baseMapForTests as? RawBucketHashMap)
            bucket.beforeRemovalUnlinks = {
                _ = try? limits.withValue(forKey: 1) { (value: inout UInt64) in value += 1 }
            }
            defer { bucket.beforeRemovalUnlinks = nil }
            #expect(try limits.removeValue(forKey: 1) == 11)
        }
        #expect(log.entries.withLock { $0.map(\.stored) } == [11])
        try registration.unregister()
    }
    #endif

    #if DEBUG
    /// A custom map's replace tells its provider of the value the caller got back. Values
    /// over 8 bytes on the bucket base, and every value on the lock-free base, are copied
    /// out of the retired entry; the report read the entry again, so a helper-mode write in
    /// place landing between the two reads gave the caller one value and the provider
    /// another (found by review, 2026-12-06, twenty-second session: reliability.md row 214).
    /// The base's debug hook writes through a pointer to the old value, lent before the
    /// replace, just after the copy.
    @Test(arguments: [ProviderBaseMap.hashBucketLocked, .hashLockFree])
    func aReplaceReportsTheValueItsCallerGot(base: ProviderBaseMap) throws {
        try Self.withLentWideValue(base: base, type: 4210, hook: { bucket, lockFree, scribble in
            bucket?.afterCopyingTheDisplacedValue = scribble
            lockFree?.afterCopyingTheDisplacedValue = scribble
        }) { map, original in try map.updateValue(WidePair(first: 11, second: 21), forKey: 1) }
    }

    /// A map of `WidePassingProvider` on `base` holding a value under key 1, whose bytes
    /// are lent in a section that has ended (the entry stays until `change` takes it out, its
    /// memory until a grace period after `change`'s own section): `hook` installs, on the
    /// base map, a debug hook that writes over them. `change` returns the value it took
    /// out; the caller and the provider must both have got the original.
    static func withLentWideValue(
        base: ProviderBaseMap, type: UInt32,
        hook: (RawBucketHashMap?, RawLockFreeHashMap?, @escaping @Sendable () -> Void) -> Void,
        change: (CustomMap<UInt32, WidePair>, WidePair) throws -> WidePair?
    ) throws {
        let log = WideRemovalLog()
        let registry = MapProviderRegistry()
        let registration = try registry.register(WidePassingProvider(log: log), type: MapType(rawValue: type), base: base)
        do {
            let map = try registration.makeMap(maxEntries: 16)
            let original = WidePair(first: 10, second: 20)
            try map.updateValue(original, forKey: 1)
            let lent = try Epoch.withSection { (section) throws(MapError) in
                try withUnsafeBytes(of: UInt32(1)) { (key) throws(MapError) in
                    UInt(bitPattern: try map.raw.lookupInPlace(key: key, in: section).baseAddress!)
                }
            }
            let scribble: @Sendable () -> Void = {
                UnsafeMutableRawPointer(bitPattern: lent)!
                    .storeBytes(of: WidePair(first: 0xEEEE, second: 0xEEEE), as: WidePair.self)
            }
            switch map.raw.baseMapForTests {
            case let bucket as RawBucketHashMap: hook(bucket, nil, scribble)
            case let lockFree as RawLockFreeHashMap: hook(nil, lockFree, scribble)
            default: Issue.record("unexpected base \(base)")
            }
            #expect(try change(map, original) == original)
            #expect(log.removed.withLock { $0 } == [original], "the provider heard of another value than the caller got")
        }
        try registration.unregister()
    }

    /// The same for a removal (reliability.md row 322): `removeValue` and the provider's
    /// removal callback get one copy of the value. The report read the retired entry again,
    /// so an in-place write through a pointer lent before the removal, landing between the
    /// two reads, gave them different values (row 214 had fixed replaces only).
    @Test(arguments: [ProviderBaseMap.hashBucketLocked, .hashLockFree])
    func aRemovalReportsTheValueItsCallerGot(base: ProviderBaseMap) throws {
        try Self.withLentWideValue(base: base, type: 4211, hook: { bucket, lockFree, scribble in
            bucket?.afterCopyingTheRemovedValue = scribble
            lockFree?.afterCopyingTheRemovedValue = scribble
        }) { map, _ in try map.removeValue(forKey: 1) }
    }
    #endif

    /// An object map's writers wait, after their section, when the releases of displaced
    /// objects fall far behind reclamation, as the maps' own writes do. Each release was a
    /// work item no writer waited for: on a bucket-locked or array base (values replaced in
    /// place, nothing retired into a list the base throttles on), replacing objects faster
    /// than they were released grew the backlog, and the objects it kept alive, without
    /// bound (found by review, 2026-12-06). A reader holds grace periods back; a replace
    /// must not release the object it displaced meanwhile, and once references to one
    /// object fill the releases' list past the threshold, the next replace must wait.
    @Test(arguments: [ProviderBaseMap.hashBucketLocked, .array])
    func aReplaceWaitsWhenReleasesFallFarBehind(base: ProviderBaseMap) throws {
        let census = Census()
        let releasedEarly = Atomic<Bool>(false)
        let waitedMilliseconds = Atomic<Int>(0)
        do {
            let objects = try ObjectMap<UInt32, Tracked>(maxEntries: 8, base: base)
            try objects.updateValue(Tracked(0, census), forKey: 1)
            let filler = Tracked(-1, census)
            let readerInside = Atomic<Bool>(false)
            let writerDone = Atomic<Bool>(false)
            runOnThreads(2) { thread in
                if thread == 0 {
                    Epoch.withSection { _ in
                        readerInside.store(true, ordering: .releasing)
                        while !writerDone.load(ordering: .acquiring) { usleep(1_000) }
                    }
                    return
                }
                defer { writerDone.store(true, ordering: .releasing) }
                while !readerInside.load(ordering: .acquiring) { sched_yield() }
                _ = try? objects.updateValue(Tracked(1, census), forKey: 1)
                // The displaced object waits for the reader (its grace period starts after it entered).
                releasedEarly.store(census.deinitialized.load(ordering: .relaxed) != 0, ordering: .relaxed)
                // 8 bytes a pending reference: past the threshold, and a batch per stripe more.
                for _ in 0..<(EpochRetireList.throttleThreshold / 8 + 8_192) {
                    objectMapReleases.retire(Unmanaged.passRetained(filler).toOpaque())
                }
                let clock = ContinuousClock()
                let start = clock.now
                _ = try? objects.updateValue(Tracked(2, census), forKey: 1)
                let waited = (clock.now - start).components
                waitedMilliseconds.store(Int(waited.seconds) * 1_000 + Int(waited.attoseconds / 1_000_000_000_000_000),
                                         ordering: .relaxed)
            }
        }
        let early = releasedEarly.load(ordering: .relaxed)
        let waited = waitedMilliseconds.load(ordering: .relaxed)
        #expect(!early)
        // The throttle waits up to `throttleWaitLimit` (250 ms) while the reader holds on.
        #expect(waited >= 200)
        Epoch.barrier()
        Epoch.barrier()
        #expect(census.alive.load(ordering: .relaxed) == 0)
    }

    /// A registration unregistered makes no map of the provider registered for its type
    /// since (it made one its successor served, which held the successor busy).
    @Test func aRegistrationUnregisteredMakesNoMapsOfTheProviderRegisteredSince() throws {
        let registry = MapProviderRegistry()
        let type = MapType(rawValue: 4210)
        let clamping = try registry.register(ClampingProvider(log: RemovalLog()), type: type, base: .hashBucketLocked)
        try clamping.unregister()
        let complementing = ComplementingProvider(log: RemovalLog())
        let current = try registry.register(complementing, type: type, base: .hashLockFree)
        // Before, the old registration made a map its successor served (on the lock-free base,
        // values complemented), and that map then held the successor's registration busy.
        #expect(throws: MapError.keyNotFound) { _ = try clamping.makeMap(maxEntries: 4) }
        #expect(complementing.counter.live.load(ordering: .relaxed) == 0, "the successor made a context")
        let map = try current.makeMap(maxEntries: 4)
        #expect(map.raw.baseKind == .hashLockFree)
        #expect(complementing.counter.live.load(ordering: .relaxed) == 1)
    }

    /// On an array base, `count` and `isEmpty` count the slots that hold an object, as
    /// iteration lists them (both read the array's slot count: a fresh map of 8 slots
    /// counted 8 and was not empty; found by review, 2026-12-05, sixteenth session).
    @Test func objectMapOnAnArrayCountsItsObjects() throws {
        let census = Census()
        do {
            let objects = try ObjectMap<UInt32, Tracked>(maxEntries: 8, base: .array)
            #expect(objects.isEmpty && objects.count == 0)
            try objects.updateValue(Tracked(1, census), forKey: 5)
            try objects.updateValue(Tracked(2, census), forKey: 5)
            #expect(!objects.isEmpty && objects.count == 1)
            try objects.updateValue(Tracked(3, census), forKey: 0)
            #expect(objects.count == 2 && objects.count == Array(objects).count)
            #expect(objects.capacity == 8)
        }
        Epoch.barrier()
        Epoch.barrier()
        #expect(census.alive.load(ordering: .relaxed) == 0)
    }

    /// The creation errors `ObjectMap.init` documents: E2BIG past a hash base's 2^27 entries,
    /// EINVAL past `UInt32.max` and below 1 (the doc listed only EINVAL and ENOMEM: found by
    /// review, 2026-12-06, twenty-fifth session).
    @Test func objectMapCreationErrorsAreTheDocumentedOnes() {
        #expect(throws: MapError.outOfSpace) { _ = try ObjectMap<UInt32, Tracked>(maxEntries: (1 << 27) + 1) }
        #expect(throws: MapError.invalidArgument) { _ = try ObjectMap<UInt32, Tracked>(maxEntries: 1 << 32) }
        #expect(throws: MapError.invalidArgument) { _ = try ObjectMap<UInt32, Tracked>(maxEntries: 0) }
    }

    /// Many threads swap and remove objects while readers use them: every object dies
    /// exactly once, and no reader sees a dead one.
    @Test(arguments: [ProviderBaseMap.hashBucketLocked, .hashLockFree])
    func objectMapUnderContention(_ base: ProviderBaseMap) throws {
        let census = Census()
        let broken = Atomic<Int>(0)
        // Each kind of write must succeed, and a replace must displace an object: with every
        // error swallowed, a map whose replaces threw would have passed with the swap path
        // never run (found by review, 2026-12-05, eighteenth session).
        let replaced = Atomic<Int>(0), removed = Atomic<Int>(0), inserted = Atomic<Int>(0), failures = Atomic<Int>(0)
        do {
            let objects = try ObjectMap<UInt32, Tracked>(maxEntries: 64, base: base)
            runOnThreads(4) { thread in
                var random = XorShift(seed: UInt64(thread + 7))
                for round in 0..<3_000 {
                    let key = UInt32(random.next() % 16)
                    do {
                        switch random.next() % 4 {
                        case 0: if try objects.updateValue(Tracked(round, census), forKey: key) != nil { replaced.add(1, ordering: .relaxed) }
                        case 1: if try objects.removeValue(forKey: key) != nil { removed.add(1, ordering: .relaxed) }
                        case 2: if try objects.insertIfAbsent(Tracked(round, census), forKey: key) { inserted.add(1, ordering: .relaxed) }
                        default: if let object = objects[key], !object.isIntact { broken.add(1, ordering: .relaxed) }
                        }
                    } catch {
                        failures.add(1, ordering: .relaxed)
                    }
                }
            }
        }
        Epoch.barrier()
        Epoch.barrier()
        #expect(failures.load(ordering: .relaxed) == 0)
        #expect(replaced.load(ordering: .relaxed) > 0 && removed.load(ordering: .relaxed) > 0
                    && inserted.load(ordering: .relaxed) > 0)
        #expect(broken.load(ordering: .relaxed) == 0)
        #expect(census.alive.load(ordering: .relaxed) == 0)
        #expect(census.created.load(ordering: .relaxed) == census.deinitialized.load(ordering: .relaxed))
    }
}
