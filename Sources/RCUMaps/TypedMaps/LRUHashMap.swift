/// An `LRU_HASH` map of `Key` → `Value`: a bounded cache. A new key in a full map evicts an
/// entry not used recently instead of being refused. Storage is
/// ``/RCUBaseMaps/RawBucketHashMap`` with CLOCK eviction.
///
/// ```swift
/// let flows = try LRUHashMap<FlowKey, FlowStats>(maxEntries: 1 << 16)
/// try flows.updateValue(stats, forKey: flow)   // never E2BIG: evicts when full
/// if let seen = flows[flow] { … }              // marks the entry recently used
/// ```
///
/// Not scan-resistant: a new entry is published marked used, as a looked-up one is, so a
/// burst of keys used once (a scan) counts as recent as the hot keys, and once such keys
/// take a large share of `maxEntries` between two uses of a hot key, the hand evicts hot
/// keys too. Size the map for the working set plus the one-time keys that arrive within
/// one reuse interval of the hot ones. (Linux's LRU puts a new entry on its inactive list
/// unless it is looked up before the list is rotated, which resists a scan better.)
///
/// The key just written is present when the update returns — under concurrent writers,
/// unless their evictions moved the hand on by half its span meanwhile (in a table of one
/// or two buckets — `maxEntries` 1 or 2 for 8-byte keys and values; the count depends on
/// the sizes — that distance is nothing: another writer can evict it at once) — and `count` never exceeds `maxEntries`, also under concurrent writers. When
/// readers use every entry faster than the hand sweeps, an insert evicts one anyway after
/// two laps, or after passing over 2,048 used entries where two laps hold more (forced
/// laps, as Linux's forced shrink after its bounded scan; a forced lap takes an entry
/// whatever its use): its work is bounded, at most the plain sweep (two laps, or 2,048 used entries
/// where two laps hold more) and two more laps of the hand an attempt (the last, reached only when the forced lap finds no victim —
/// writers wrote into every bucket within it, or other writers moved the hand past its
/// ticks while it waited for chain locks — may evict an entry written a moment before; an insert that finds no live
/// entry at all, every unit of room in flight with other writers, yields and tries again). Every lookup (subscript,
/// in-place access) marks its entry recently used: one atomic OR the first time after an
/// eviction pass, nothing after that, and never a lock. A pass over the map — iteration,
/// `values`, `snapshot()`, `forEachInPlace`, batches — is not a use: it leaves recency as it is.
///
/// Concurrency: any number of readers and writers on any threads; readers never lock
/// (batches take each chain's lock while they copy it, as the ``BucketHashMap``'s do);
/// writers lock one bucket; a writer that evicts first holds its own bucket's lock and only
/// *tries* the others' (it passes over a bucket whose lock is taken: it never waits for a
/// second lock), for up to 8 buckets; finding no victim there, it releases its own lock and
/// sweeps on taking one bucket's lock at a time, waiting for it. A user-mode writer that chains an overflow bucket while a thread's
/// section holds grace periods back, past the bound on overflow memory, waits up to 250 ms
/// (2 ms on a task's thread) for reclamation after its write (see <doc:EpochModel>). See
/// ``InPlaceKeyValueMap`` for in-place access.
public final class LRUHashMap<Key: BitwiseCopyable & Sendable, Value: BitwiseCopyable & Sendable>:
    DynamicKeyValueMap, InPlaceKeyValueMap, Sequence
{
    /// The byte-level map underneath. Any thread.
    public let raw: RawBucketHashMap

    /// An empty cache for at most `maxEntries` entries (its bucket array preallocated, as
    /// Linux preallocates its elements; an evicted entry's slot is reused a grace period
    /// later, so while a section holds grace periods back, inserts chain overflow buckets,
    /// and past a bound wait for reclamation: see docs/map-types.md).
    ///
    /// - Parameters:
    ///   - maxEntries: the most entries the map holds. With `perCPULists`, rounded up to a
    ///     multiple of the possible CPUs, as Linux does.
    ///   - perCPULists: `BPF_F_NO_COMMON_LRU` (`maxEntries` rounded to a multiple of the
    ///     possible CPUs; the eviction is the common LRU's: see docs/linux-compatibility.md).
    ///   - name: at most 15 characters of `[A-Za-z0-9_.]`, as Linux's map names.
    ///   - poolTag: the pool tag the map's memory is accounted under.
    /// - Throws: ``/RCUBaseMaps/MapError/invalidArgument`` for a key type with padding, a value
    ///   type aligned beyond 8 bytes, or a bad definition; ``/RCUBaseMaps/MapError/outOfSpace``
    ///   (E2BIG) for `maxEntries` over 2^27 (after rounding, with `perCPULists`) or a key and
    ///   value of 4,194,256 bytes or more, as Linux; ``/RCUBaseMaps/MapError/noMemory``.
    ///
    /// Concurrency: any thread.
    public init(maxEntries: Int, perCPULists: Bool = false, name: String = "", poolTag: PoolTag? = nil) throws(MapError) {
        raw = try RawBucketHashMap(.typed(.lruHash, key: Key.self, value: Value.self, maxEntries: maxEntries,
                                          flags: perCPULists ? .noCommonLRU : [], name: name, numaNode: nil,
                                          hashImplementation: .bucketLocked, poolTag: poolTag))
    }

    /// A typed view of an existing byte-level `LRU_HASH` (both views see the same entries).
    ///
    /// - Throws: ``/RCUBaseMaps/MapError/invalidArgument`` if the map is not an `LRU_HASH`, or its
    ///   key and value sizes are not those of `Key` and `Value`.
    ///
    /// Concurrency: any thread.
    ///
    /// A map created with `BPF_F_WRONLY` or `BPF_F_WRONLY_PROG` is refused (EINVAL): the typed
    /// reads (subscripts, in-place closures) do not throw. `BPF_F_RDONLY` is kept (the typed
    /// writes throw EPERM); `BPF_F_RDONLY_PROG` and a lock word are refused (EINVAL): the
    /// view's in-place closures write values whole, from user code.
    ///
    /// - Precondition: the map holds only valid values of the view's types (see
    ///   <doc:TypedMaps#Bytes-the-view-did-not-write>).
    public init(wrapping raw: RawBucketHashMap) throws(MapError) {
        guard raw.definition.type == .lruHash else {
            throw MapError.invalidArgument.with(reason: "LRUHashMap wraps an LRU_HASH, not \(raw.definition.type)")
        }
        try MapDefinition.checkTyped(raw, key: Key.self, value: Value.self)
        try MapDefinition.checkInPlaceWrites(raw)
        self.raw = raw
    }

    /// The value stored under `key`, copied out; `nil` when absent (or evicted). Marks the
    /// entry recently used.
    ///
    /// Concurrency: any thread; never locks.
    @inlinable
    public subscript(key: Key) -> Value? {
        do {
            return try value(forKey: key)
        } catch {
            typedMapInvariantBroken(error, "lookup")
        }
    }
}
