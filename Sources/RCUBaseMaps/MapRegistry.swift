import RCUEpoch
import Synchronization

/// Creates maps from definitions and owns the type-ID space.
///
/// - IDs 1–4095 are built-in types. This release serves `HASH` (both implementations,
///   chosen by ``MapDefinition/hashImplementation``), `ARRAY`, `PERCPU_ARRAY`
///   (``RawPerCPUArrayMap``), `LRU_HASH` (``RawBucketHashMap`` with eviction),
///   `PERCPU_HASH` and `LRU_PERCPU_HASH` (``RawPerCPUHashMap``), `LPM_TRIE` (``RawLPMTrieMap``),
///   `QUEUE` and `STACK` (``RawQueueStackMap``); the other types of eBPF-for-Windows' numbering
///   (IDs up to 14: `PROG_ARRAY`, `HASH_OF_MAPS`, `ARRAY_OF_MAPS`, `RINGBUF`, `PERF_EVENT_ARRAY`)
///   are refused with ``MapError/notSupported``, and IDs 15–4095 with
///   ``MapError/invalidArgument`` (an unknown type, as Linux answers one).
/// - IDs 4096–65535 are custom types served by providers (`MapProviderRegistry` in the
///   provider layer). Creating one for which no provider is registered is refused with
///   ``MapError/invalidArgument`` and a reason that says so.
/// - ID 0 and IDs above 65535 are invalid (``MapError/invalidArgument``), as an unknown
///   `map_type` is on Linux.
///
/// Concurrency: any thread.
public enum MapRegistry {
    /// Creates custom-type maps; installed by the provider layer (`RCUMapProviders`) when it
    /// is first used. Not API.
    package typealias CustomTypeFactory = @Sendable (MapDefinition) throws(MapError) -> any RawMap
    /// The installed factory for custom types (set by the provider layer). Not API.
    ///
    /// Boxed in a class: a closure read out of the lock's generic `inout` storage was
    /// re-wrapped in two more reabstraction thunks on every read, so each custom-type
    /// creation got slower than the last and the 30-odd-thousandth overflowed the stack
    /// (found by fuzzing; `MapRegistryCreationTests.manyCustomCreationsStayCheap`).
    /// A fork participant: a fork while another thread held it (any custom map's creation
    /// reads it) left the child's custom creations waiting forever (found by review,
    /// 2026-12-05, sixteenth session).
    package static let customTypeFactory: ThreadLock<CustomTypeFactoryBox?> = {
        EpochFork.addParticipant(level: .maps, prepare: { MapRegistry.customTypeFactory.lockForFork() },
                                 parent: { MapRegistry.customTypeFactory.unlockAfterFork() },
                                 child: { MapRegistry.customTypeFactory.unlockAfterFork() })
        return ThreadLock(nil)
    }()

    /// The custom-type factory, as a reference. Not API.
    package final class CustomTypeFactoryBox: Sendable {
        package let make: CustomTypeFactory
        package init(_ make: @escaping CustomTypeFactory) { self.make = make }
    }

    /// Built-in types this release can create.
    public static let supportedBuiltInTypes: [MapType] = [
        .hash, .array, .perCPUHash, .perCPUArray, .lruHash, .lpmTrie, .queue, .lruPerCPUHash, .stack,
    ]

    /// Creates a map for `definition`.
    ///
    /// - Returns: The new, empty map (arrays: every value zero).
    /// - Throws: ``MapError/invalidArgument`` for an invalid definition, an unknown type,
    ///   or a custom type with no provider; ``MapError/notSupported`` for a reserved
    ///   built-in type not served yet or a lock word on a type that cannot hold one;
    ///   ``MapError/accessDenied`` for a lock word with a program access flag;
    ///   ``MapError/unsupportedByMapType`` for an LRU hash with `BPF_F_NO_PREALLOC`;
    ///   ``MapError/outOfSpace`` for sizes beyond the limits; ``MapError/wouldDeadlock`` for
    ///   a lock-free `HASH` created inside a section while a fork is starting (see
    ///   ``RawLockFreeHashMap``); ``MapError/noMemory``.
    public static func create(_ definition: MapDefinition) throws(MapError) -> any RawMap {
        switch definition.type {
        case .hash:
            switch definition.hashImplementation {
            case .lockFree: return try RawLockFreeHashMap(definition)
            case .bucketLocked: return try RawBucketHashMap(definition)
            }
        case .lruHash:
            return try RawBucketHashMap(definition)
        case .perCPUHash, .lruPerCPUHash:
            return try RawPerCPUHashMap(definition)
        case .array:
            return try RawArrayMap(definition)
        case .perCPUArray:
            return try RawPerCPUArrayMap(definition)
        case .lpmTrie:
            return try RawLPMTrieMap(definition)
        case .queue, .stack:
            return try RawQueueStackMap(definition)
        case let type where type.isCustom:
            guard let factory = customTypeFactory.withLock({ $0 }) else {
                throw MapError.invalidArgument.with(
                    reason: "no provider is registered for custom map type \(type.rawValue)")
            }
            return try factory.make(definition)
        case let type where type.isBuiltInRange && type.rawValue <= MapType.perfEventArray.rawValue:
            throw MapError.notSupported.with(reason: "\(type) is not available in this release")
        case let type:
            throw MapError.invalidArgument.with(reason: "unknown map type \(type.rawValue)")
        }
    }
}
