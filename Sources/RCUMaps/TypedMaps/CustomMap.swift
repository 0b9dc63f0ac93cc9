#if canImport(Glibc)
import Glibc
#endif

/// A map of a custom type (a provider's, IDs 4096–65535) of `Key` → `Value`: the typed
/// face of ``/RCUMapProviders/RawCustomMap``. Values are what users see; the provider may store something
/// else (``/RCUMapProviders/MapProviderProperties/updatesOriginalValue``).
///
/// ```swift
/// let registration = try MapProviderRegistry.shared.register(type: myType, base: .hashBucketLocked, dispatch: table)
/// let map = try CustomMap<UInt32, UInt64>(type: myType, maxEntries: 1024)
/// try map.updateValue(7, forKey: 1)
/// let seven = try map[1]
/// ```
///
/// Every operation may also fail with what the provider's callbacks throw, so lookups
/// throw (a built-in map's do not). In-place access throws ``/RCUBaseMaps/MapError/notSupported`` when
/// the provider transforms values (their stored form is not `Value`).
///
/// Concurrency: as the base map the provider chose; callbacks run on the calling thread.
/// In-place writes (``withValue(forKey:_:)``, ``withAtomicFields(forKey:_:)``) that race a
/// replace or delete of the entry behave as in ``BucketHashMap`` and ``ArrayMap`` on those
/// bases (see ``InPlaceKeyValueMap``), except on the lock-free base: there a provider hears
/// of every displaced value, so no value is exchanged in place — every update publishes a
/// new entry, and an in-place write to the old one after the replace is lost, whatever the
/// value's size (``LockFreeHashMap`` exchanges values of at most 8 bytes in place).
public final class CustomMap<Key: BitwiseCopyable & Sendable, Value: BitwiseCopyable & Sendable>: DynamicKeyValueMap, Sequence {
    /// The byte-level map underneath.
    public let raw: RawCustomMap

    /// A new map of the custom `type`, created by `registry`'s provider for it.
    ///
    /// - Throws: ``/RCUBaseMaps/MapError/invalidArgument`` for an unregistered type, a key type with
    ///   padding, a value type aligned beyond 8 bytes, a type whose ``TypedMapProvider`` serves
    ///   other `Key` or `Value` types (even of the same sizes: a `UInt8` view of `Bool` values
    ///   is refused, before any provider callback runs), or a bad definition; the base map's
    ///   own creation errors (say ``/RCUBaseMaps/MapError/outOfSpace``, E2BIG, for
    ///   `maxEntries` over 2^27 on a hash base); whatever the provider's
    ///   `preprocessMapCreate` throws; ``/RCUBaseMaps/MapError/noMemory``.
    public init(type: MapType, maxEntries: Int, name: String = "", poolTag: PoolTag? = nil,
                registry: MapProviderRegistry = .shared) throws(MapError) {
        raw = try registry.createMap(.typed(type, key: Key.self, value: Value.self, maxEntries: maxEntries,
                                            flags: [], name: name, numaNode: nil, poolTag: poolTag),
                                     expecting: ProviderValueTypes(key: Key.self, value: Value.self))
    }

    /// A new map by the provider of `registration` (``/RCUMapProviders/MapProviderRegistration/createMap(_:)``:
    /// ENOENT once it is unregistered); otherwise as ``init(type:maxEntries:name:poolTag:registry:)``.
    package init(registration: MapProviderRegistration, maxEntries: Int, name: String = "",
                 poolTag: PoolTag? = nil) throws(MapError) {
        raw = try registration.createMap(.typed(registration.type, key: Key.self, value: Value.self,
                                                maxEntries: maxEntries, flags: [], name: name, numaNode: nil,
                                                poolTag: poolTag),
                                         expecting: ProviderValueTypes(key: Key.self, value: Value.self))
    }

    /// A typed view of an existing custom map.
    ///
    /// A map created with `BPF_F_WRONLY` or `BPF_F_WRONLY_PROG` is refused (EINVAL): the typed
    /// reads (subscripts, in-place closures) do not throw. So is one created with
    /// `BPF_F_RDONLY_PROG` (EINVAL), as by the other typed views: ``withValue(forKey:_:)`` and
    /// ``withAtomicFields(forKey:_:)`` write in place through helper-mode pointers, which such
    /// a map's program side may not do (found by review, 2026-12-05: this view accepted it).
    /// `BPF_F_RDONLY` and a freeze are kept (the typed writes throw EPERM). A map
    /// of a ``TypedMapProvider`` is refused (EINVAL) unless `Key` and `Value` are the
    /// provider's types: sizes alone do not make its values valid ones of the view's type.
    ///
    /// - Precondition: the map holds only valid values of the view's types (see
    ///   <doc:TypedMaps#Bytes-the-view-did-not-write>).
    public init(wrapping raw: RawCustomMap) throws(MapError) {
        try MapDefinition.checkTyped(raw, key: Key.self, value: Value.self)
        try MapDefinition.checkInPlaceWrites(raw)
        try ProviderValueTypes.check(view: ProviderValueTypes(key: Key.self, value: Value.self),
                                     servedBy: raw.providerValueTypes, type: raw.definition.type)
        self.raw = raw
    }

    /// The value stored under `key` as the provider presents it; `nil` when absent.
    ///
    /// - Throws: what the provider's find callback throws.
    @inlinable
    public subscript(key: Key) -> Value? {
        get throws(MapError) { try value(forKey: key) }
    }

    /// Runs `body` on the value stored under `key`, in place, inside a new epoch section
    /// (helper mode); `nil` if the key is absent. `body` must not reach the same entry
    /// through the map (see ``InPlaceKeyValueMap``, "Reaching the same entry").
    ///
    /// - Throws: ``/RCUBaseMaps/MapError/notSupported`` when the provider transforms values; what the
    ///   provider's find callback throws; what `body` throws. Untyped (`any Error`), unlike the
    ///   rest of the typed API's `throws(MapError)`: both the map's errors and `body`'s pass
    ///   through, and a closure that itself calls a throwing map operation is inferred to
    ///   throw `any Error` (Swift 6.3), so a `throws(MapError)` body would need an annotation
    ///   at every call. Catch the map's errors with `catch let error as MapError`.
    @discardableResult
    public func withValue<Result>(forKey key: Key, _ body: (inout Value) throws -> Result) throws -> Result? {
        try Epoch.withSection { (section) throws -> Result? in try withValue(forKey: key, in: section, body) }
    }

    /// Runs `body` with an atomic view of the value stored under `key`, in place, inside a
    /// new epoch section; `nil` if the key is absent. Throws as ``withValue(forKey:_:)``.
    @discardableResult
    public func withAtomicFields<Result>(forKey key: Key, _ body: (borrowing AtomicFields<Value>) throws -> Result)
        throws -> Result?
    {
        try Epoch.withSection { (section) throws -> Result? in try withAtomicFields(forKey: key, in: section, body) }
    }

    /// ``withValue(forKey:_:)`` inside a section the caller already holds (helper mode, as
    /// an eBPF program's `bpf_map_lookup_elem`). Throws as ``withValue(forKey:_:)``.
    @discardableResult
    public func withValue<Result>(forKey key: Key, in section: borrowing EpochSection,
                                  _ body: (inout Value) throws -> Result) throws -> Result? {
        guard let stored = try inPlace(key, in: section) else { return nil }
        return try body(&stored.assumingMemoryBound(to: Value.self).pointee)
    }

    /// ``withAtomicFields(forKey:_:)`` inside a section the caller already holds.
    @discardableResult
    public func withAtomicFields<Result>(forKey key: Key, in section: borrowing EpochSection,
                                         _ body: (borrowing AtomicFields<Value>) throws -> Result) throws -> Result? {
        guard let stored = try inPlace(key, in: section) else { return nil }
        return try body(AtomicFields(stored))
    }

    /// Inserts `defaultValue` if `key` is absent (through the provider's addition callback),
    /// then runs `body` on the stored value in place: the flow-table idiom, as
    /// ``InPlaceKeyValueMap/upsert(forKey:default:_:)``. `body` runs exactly once; if
    /// another thread deletes the key between the insert and `body`, it inserts again.
    ///
    /// - Throws: ``/RCUBaseMaps/MapError/notSupported`` when the provider transforms values
    ///   (before anything is inserted); what the insert throws (E2BIG when full, EPERM when
    ///   frozen, the provider's refusal of `defaultValue`); what the find callback throws;
    ///   ENOENT when the key is stored but the find callback hides it (throws ENOENT for it:
    ///   nothing can be updated in place). `body` does not throw, as the built-in maps'
    ///   ``InPlaceKeyValueMap/upsert(forKey:default:_:)``'s.
    @discardableResult
    public func upsert<Result>(forKey key: Key, default defaultValue: @autoclosure () -> Value,
                               _ body: (inout Value) -> Result) throws(MapError) -> Result {
        var hidden = 0
        while true {
            let result = try Epoch.withSection { (section) throws(MapError) -> Result? in
                guard let stored = try inPlace(key, in: section) else { return nil }
                return body(&stored.assumingMemoryBound(to: Value.self).pointee)
            }
            if let result { return result }
            try insertOrNoteHidden(defaultValue(), forKey: key, hidden: &hidden)
        }
    }

    /// One insert of `upsert`'s loop. A key the insert finds present but the next lookup
    /// does not is one the provider's find callback hides (ENOENT; the object map hides
    /// never-written array slots), or one another thread removed in between: after 64 such
    /// rounds in a row it is taken to be hidden, and ENOENT is thrown — the loop spun
    /// forever on such a key (found by review, 2026-12-05, sixteenth session).
    func insertOrNoteHidden(_ value: Value, forKey key: Key, hidden: inout Int) throws(MapError) {
        if try insertIfAbsent(value, forKey: key) {
            hidden = 0
            return
        }
        hidden += 1
        if hidden >= 64 {
            throw MapError.keyNotFound.with(reason: "the key is stored but its provider hides it: nothing to update in place")
        }
        if hidden & 7 == 0 { sched_yield() }
    }

    /// ``upsert(forKey:default:_:)`` with an atomic view of the stored value.
    @discardableResult
    public func upsertAtomicFields<Result>(forKey key: Key, default defaultValue: @autoclosure () -> Value,
                                           _ body: (borrowing AtomicFields<Value>) -> Result) throws(MapError) -> Result {
        var hidden = 0
        while true {
            let result = try Epoch.withSection { (section) throws(MapError) -> Result? in
                guard let stored = try inPlace(key, in: section) else { return nil }
                return body(AtomicFields(stored))
            }
            if let result { return result }
            try insertOrNoteHidden(defaultValue(), forKey: key, hidden: &hidden)
        }
    }

    /// Calls `body` with every entry, in place, inside one epoch section for the whole pass
    /// (as ``InPlaceKeyValueMap/forEachInPlace(_:)``): get-next-key order, no key twice,
    /// every key present for the whole pass — on a lock-free hash base with iteration's one
    /// exception for keys of equal 64-bit hash (see ``KeyValueMapIterator``). An entry whose lookup the provider's find
    /// callback refuses is skipped, as iteration skips it. `body` must not block.
    ///
    /// - Throws: ``/RCUBaseMaps/MapError/notSupported`` when the provider transforms values;
    ///   what `body` throws (the pass stops there).
    public func forEachInPlace(_ body: (Key, inout Value) throws -> Void) throws {
        // Before the pass: a map with no entry refuses too.
        guard !raw.updatesOriginalValue else { throw RawCustomMap.helperModeBlocked }
        try Epoch.withSection { (section) throws in
            // Each key's successor fetched before `body` runs: `body` may remove the key.
            var pass = KeyValueMapPass(self)
            while let key = pass.next() {
                // Absent meanwhile, or refused by the provider's find callback: skipped.
                guard let stored = (try? inPlace(key, in: section)) ?? nil else { continue }
                try body(key, &stored.assumingMemoryBound(to: Value.self).pointee)
            }
        }
    }

    func inPlace(_ key: Key, in section: borrowing EpochSection) throws(MapError) -> UnsafeMutableRawPointer? {
        try withUnsafeBytes(of: key) { (keyBytes) throws(MapError) -> UnsafeMutableRawPointer? in
            do throws(MapError) {
                return try raw.lookupInPlace(key: keyBytes, in: section).baseAddress
            } catch where error == .keyNotFound {
                return nil
            }
        }
    }
}
