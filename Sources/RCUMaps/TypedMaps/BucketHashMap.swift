/// A `HASH` map of `Key` → `Value` with lock-free readers and one lock per bucket for
/// writers, keys and values inline in cache-line buckets: the fastest lookups of the
/// typed maps. Storage is ``/RCUBaseMaps/RawBucketHashMap``.
///
/// ```swift
/// let routes = try BucketHashMap<UInt32, NextHop>(maxEntries: 1 << 16)
/// try routes.updateValue(hop, forKey: prefix)
/// if let hop = routes[prefix] { forward(to: hop) }
/// ```
///
/// Bounded: a new key in a full map is refused (``/RCUBaseMaps/MapError/outOfSpace``, E2BIG), while
/// existing keys can still be replaced. Values of at most 8 bytes are replaced in place.
///
/// Concurrency: any number of readers and writers on any threads; readers never lock
/// and never write shared memory (batches, `lookupBatch` included, take each chain's lock
/// while they copy it, as Linux's do); writers of different buckets never contend. A user-mode writer that chains an overflow bucket while a thread's
/// section holds grace periods back, past the bound on overflow memory, waits up to 250 ms
/// (2 ms on a task's thread) for reclamation after its write (see <doc:EpochModel>).
/// A signal handler may look up (on a thread that entered a section before the signal: a
/// thread's first section registers it, which is not reentrant), but must not write: a handler that interrupted a write of
/// its own thread would wait for ever for the bucket lock that write holds.
/// See ``InPlaceKeyValueMap`` for in-place access.
public final class BucketHashMap<Key: BitwiseCopyable & Sendable, Value: BitwiseCopyable & Sendable>:
    DynamicKeyValueMap, InPlaceKeyValueMap, Sequence
{
    /// The byte-level map underneath.
    public let raw: RawBucketHashMap

    /// An empty map for at most `maxEntries` entries (preallocated, as Linux preallocates).
    ///
    /// - Parameters:
    ///   - maxEntries: the most entries the map holds; its buckets are allocated for them.
    ///   - name: at most 15 characters of `[A-Za-z0-9_.]`, as Linux's map names.
    ///   - numaNode: accepted for definitions ported from Linux; the buckets are placed
    ///     by the allocator.
    ///   - poolTag: the pool tag the map's memory is accounted under.
    /// - Throws: ``/RCUBaseMaps/MapError/invalidArgument`` for a key type with padding, a value type
    ///   aligned beyond 8 bytes, or a bad definition; ``/RCUBaseMaps/MapError/outOfSpace``
    ///   (E2BIG) for `maxEntries` over 2^27 or a key and value of 4,194,256 bytes or more, as
    ///   Linux; ``/RCUBaseMaps/MapError/noMemory``.
    public init(maxEntries: Int, name: String = "", numaNode: Int? = nil, poolTag: PoolTag? = nil) throws(MapError) {
        raw = try RawBucketHashMap(.typed(.hash, key: Key.self, value: Value.self, maxEntries: maxEntries,
                                          flags: [], name: name, numaNode: numaNode,
                                          hashImplementation: .bucketLocked, poolTag: poolTag))
    }

    /// A typed view of an existing byte-level map (both views see the same entries).
    ///
    /// - Throws: ``/RCUBaseMaps/MapError/invalidArgument`` if the map's key and value sizes are not
    ///   those of `Key` and `Value`, or their layouts are refused.
    ///
    /// A map created with `BPF_F_WRONLY` or `BPF_F_WRONLY_PROG` is refused (EINVAL): the typed
    /// reads (subscripts, in-place closures) do not throw. `BPF_F_RDONLY` is kept (the typed
    /// writes throw EPERM); `BPF_F_RDONLY_PROG` and a lock word are refused (EINVAL): the
    /// view's in-place closures write values whole, from user code.
    ///
    /// - Precondition: the map holds only valid values of the view's types (see
    ///   <doc:TypedMaps#Bytes-the-view-did-not-write>).
    public init(wrapping raw: RawBucketHashMap) throws(MapError) {
        // An LRU_HASH evicts where this view's documentation promises E2BIG: `LRUHashMap`.
        guard raw.definition.type == .hash else {
            throw MapError.invalidArgument.with(reason: "a BucketHashMap wraps a HASH, not \(raw.definition.type): use LRUHashMap")
        }
        try MapDefinition.checkTyped(raw, key: Key.self, value: Value.self)
        try MapDefinition.checkInPlaceWrites(raw)
        self.raw = raw
    }

    /// The value stored under `key`, copied out; `nil` when absent.
    ///
    /// Concurrency: any thread; about as fast as the byte-level lookup (it compiles to it).
    @inlinable
    public subscript(key: Key) -> Value? {
        do {
            return try value(forKey: key)
        } catch {
            typedMapInvariantBroken(error, "lookup")
        }
    }
}

/// A `HASH` map of `Key` → `Value` on liburcu's lock-free hash table (rculfhash): readers
/// never lock, writers change the table with compare-and-swap, the table resizes itself. Storage is ``/RCUBaseMaps/RawLockFreeHashMap``.
///
/// ```swift
/// let sessions = try LockFreeHashMap<UInt64, Session>(maxEntries: 100_000)
/// if try sessions.insertIfAbsent(session, forKey: id) { … }
/// ```
///
/// Bounded by `maxEntries` like every map (E2BIG for a new key in a full map). Keys and
/// values of at most 8 bytes are updated in place by compare-and-swap.
///
/// Concurrency: any number of readers and writers on any threads. Readers never lock; no
/// writer locks the table, but retiring a replaced or deleted entry and reusing a recycled
/// one take the short lock of the thread's stripe of the entries' retire list (about one
/// stripe per CPU), and an insert into a full map yields until other writers' changes in
/// flight are resolved. A write pauses when reclamation falls far behind, up to 250 ms on a
/// thread of its own and 2 ms on a task's (``/RCUEpoch/EpochRetireList/throttleIfBehind()``). Dropping the map's last reference outside a section waits for
/// rculfhash's resize worker (see the Epoch model article). A signal handler may look up (on a thread that entered a section before the signal: a
/// thread's first section registers it, which is not reentrant),
/// but must not write: a handler that interrupted a write of its own thread would wait for
/// ever for the retire-list stripe or the change in flight that write holds.
public final class LockFreeHashMap<Key: BitwiseCopyable & Sendable, Value: BitwiseCopyable & Sendable>:
    DynamicKeyValueMap, InPlaceKeyValueMap, Sequence
{
    /// The byte-level map underneath.
    public let raw: RawLockFreeHashMap

    /// An empty map for at most `maxEntries` entries.
    ///
    /// - Throws: ``/RCUBaseMaps/MapError/invalidArgument`` for a key type with padding, a value type
    ///   aligned beyond 8 bytes, or a bad definition; ``/RCUBaseMaps/MapError/outOfSpace``
    ///   (E2BIG) for `maxEntries` over 2^27 or a key and value of 4,194,256 bytes or more, as
    ///   Linux; ``/RCUBaseMaps/MapError/wouldDeadlock`` (EDEADLK) when created inside a
    ///   section, or a liburcu read lock, while a fork waits (the table's creation would wait
    ///   for the fork); ``/RCUBaseMaps/MapError/noMemory``.
    public init(maxEntries: Int, name: String = "", numaNode: Int? = nil, poolTag: PoolTag? = nil) throws(MapError) {
        raw = try RawLockFreeHashMap(.typed(.hash, key: Key.self, value: Value.self, maxEntries: maxEntries,
                                            flags: [], name: name, numaNode: numaNode,
                                            hashImplementation: .lockFree, poolTag: poolTag))
    }

    /// A typed view of an existing byte-level map (both views see the same entries).
    ///
    /// A map created with `BPF_F_WRONLY` or `BPF_F_WRONLY_PROG` is refused (EINVAL): the typed
    /// reads (subscripts, in-place closures) do not throw. `BPF_F_RDONLY` is kept (the typed
    /// writes throw EPERM); `BPF_F_RDONLY_PROG` and a lock word are refused (EINVAL): the
    /// view's in-place closures write values whole, from user code.
    ///
    /// - Precondition: the map holds only valid values of the view's types (see
    ///   <doc:TypedMaps#Bytes-the-view-did-not-write>).
    public init(wrapping raw: RawLockFreeHashMap) throws(MapError) {
        try MapDefinition.checkTyped(raw, key: Key.self, value: Value.self)
        try MapDefinition.checkInPlaceWrites(raw)
        self.raw = raw
    }

    /// The value stored under `key`, copied out; `nil` when absent.
    @inlinable
    public subscript(key: Key) -> Value? {
        do {
            return try value(forKey: key)
        } catch {
            typedMapInvariantBroken(error, "lookup")
        }
    }
}
