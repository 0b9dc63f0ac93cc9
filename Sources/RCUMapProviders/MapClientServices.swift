import RCUBaseMaps
import RCUEpoch

/// What the library offers providers: eBPF-for-Windows' client dispatch table
/// (`ebpf_base_map_client_dispatch_table_t`) — find-element on a map's base map, epoch
/// enter/exit, epoch allocation with a pool tag, deferred free, and a map's context.
///
/// Concurrency: every method may be called from any thread, including from inside provider
/// callbacks (which already run inside an epoch where the contract says so).
public struct MapClientServices: Sendable {
    /// The services (stateless: every call goes to the library).
    public init() {}

    /// The stored value of `key` in `map`'s base map, in place, with no provider callback:
    /// what a provider sees of its own storage. Valid until `section` ends.
    ///
    /// For the map's provider only: it bypasses the provider's callbacks and the refusal of
    /// helper-mode access on maps whose provider transforms values, so a write through the
    /// pointer changes the stored form behind the provider's back (on the object map, an
    /// object address whose reference the map does not hold).
    ///
    /// It is the base map's helper-mode lookup, so the map's access flags apply: on a
    /// `BPF_F_WRONLY_PROG` map it fails with ``/RCUBaseMaps/MapError/accessDenied`` (EACCES).
    ///
    /// - Throws: ``/RCUBaseMaps/MapError/keyNotFound``; ``/RCUBaseMaps/MapError/invalidArgument`` for a wrong key size;
    ///   ``/RCUBaseMaps/MapError/accessDenied`` on a `BPF_F_WRONLY_PROG` map.
    public func findElement(in map: RawCustomMap, key: UnsafeRawBufferPointer,
                            in section: borrowing EpochSection) throws(MapError) -> UnsafeMutableRawBufferPointer {
        try map.findStored(key: key, in: section)
    }

    /// Enters an epoch (re-entrant; pair with ``epochExit()`` on the same thread). Not from
    /// async code, as `Epoch.enter()` (a task may resume on another thread before the exit):
    /// use `Epoch.withSection` there (the wrapper passed `Epoch.enter()`'s `noasync` through
    /// unchecked: found by review, 2026-12-05).
    @available(*, noasync, message: "a task may resume on another thread between enter and exit: use Epoch.withSection")
    public func epochEnter() { Epoch.enter() }
    /// Leaves an epoch entered with ``epochEnter()`` on the calling thread. Not from async code.
    /// An exit with no `epochEnter()` (or `Epoch.enter()`) of the thread's own open — inside a
    /// provider callback, whose section the library entered — stops the program with a
    /// message, as `Epoch.exit()` does (it ended the library's section around the callback,
    /// unnoticed: found by review, 2026-12-06, twenty-sixth session).
    @available(*, noasync, message: "a task may resume on another thread between enter and exit: use Epoch.withSection")
    public func epochExit() { Epoch.exit() }

    /// Epoch memory under `tag` (``/RCUEpoch/EpochMemory/allocate(byteCount:tag:)``); `nil` when out of memory.
    public func allocate(byteCount: Int, tag: PoolTag) -> UnsafeMutableRawPointer? {
        EpochMemory.allocate(byteCount: byteCount, tag: tag)
    }

    /// Cache-aligned epoch memory under `tag`; `nil` when out of memory.
    public func allocateCacheAligned(byteCount: Int, tag: PoolTag) -> UnsafeMutableRawPointer? {
        EpochMemory.allocateCacheAligned(byteCount: byteCount, tag: tag)
    }

    /// Frees epoch memory after a grace period (never blocks).
    public func free(_ block: UnsafeMutableRawPointer) { EpochMemory.free(block) }

    /// Frees cache-aligned epoch memory after a grace period.
    public func freeCacheAligned(_ block: UnsafeMutableRawPointer) { EpochMemory.freeCacheAligned(block) }

    /// The context the provider returned when `map` was created (the seeds' `MAP_CONTEXT()`).
    public func mapContext(of map: RawCustomMap) -> (any MapProviderContext)? { map.providerContext }
}
