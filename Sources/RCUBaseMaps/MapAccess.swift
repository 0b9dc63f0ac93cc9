import RCUEpoch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What each side may do with a map: Linux's access flags, mapped onto the two access
/// modes, and freezing.
///
/// | flag | refuses | with |
/// |---|---|---|
/// | `BPF_F_RDONLY` | user-mode writes: update, delete, lookup-and-delete, write batches, freeze | EPERM |
/// | `BPF_F_WRONLY` | user-mode reads: lookup, get-next-key, lookup batches, lookup-and-delete | EPERM |
/// | frozen (``RawMap/freeze()``) | user-mode writes, as `BPF_F_RDONLY` | EPERM |
/// | `BPF_F_RDONLY_PROG` | helper-mode updates and deletes | EACCES |
/// | `BPF_F_WRONLY_PROG` | helper-mode lookups | EACCES |
///
/// Queues and stacks (``RawQueueStackMap``) apply the rows to their operations as Linux
/// does: push is a write, peek a read, pop both; `BPF_F_RDONLY_PROG` refuses helper push and
/// pop, and `BPF_F_WRONLY_PROG` refuses nothing (peek and pop copy into the caller's buffer).
///
/// On Linux `BPF_F_RDONLY`/`WRONLY` belong to the file descriptor the creating process
/// gets, and `*_PROG` are enforced by the verifier when a program is loaded; a userspace
/// map has one handle and no verifier, so both become run-time checks of the mode an
/// operation runs in. In-place writes through a helper-mode pointer cannot be checked:
/// code that holds a `BPF_F_RDONLY_PROG` map's pointer must not write through it (a
/// verifier would have refused it).
///
/// Concurrency: the flags are immutable; `frozen` is set once, atomically.
public struct MapAccess: Sendable {
    /// User mode may read (not `BPF_F_WRONLY`).
    public let userRead: Bool
    /// User mode may write (not `BPF_F_RDONLY`); a frozen map refuses writes besides.
    public let userWrite: Bool
    /// Helper mode may read (not `BPF_F_WRONLY_PROG`).
    public let programRead: Bool
    /// Helper mode may write (not `BPF_F_RDONLY_PROG`).
    public let programWrite: Bool

    /// The access a map created with `flags` gives.
    public init(_ flags: MapCreationFlags) {
        userRead = !flags.contains(.writeOnly)
        userWrite = !flags.contains(.readOnly)
        programRead = !flags.contains(.writeOnlyProgram)
        programWrite = !flags.contains(.readOnlyProgram)
    }
}

/// The mutable half of a map's access: whether it is frozen, and how many writable
/// mappings of its storage exist (arrays with `BPF_F_MMAPABLE`). Each base map holds one.
///
/// How a freeze excludes writes in flight without counting them on every write (which
/// every writer would contend on): a user-mode write checks ``isFrozen`` inside its epoch
/// section, and ``freeze(access:lockWord:)`` sets the flag and then waits for a grace
/// period. A write that saw the map unfrozen has finished when the freeze returns; a write
/// that starts later sees it frozen.
///
/// A freeze that finds another in progress (the flag set, its grace period not over) waits
/// for it before it answers EPERM, as Linux's second `BPF_MAP_FREEZE` waits for the first's
/// mutex: "frozen already" means the writes in flight at the first freeze have finished.
/// (It answered at once, and a write in flight could land after it returned; and one that
/// came between the first's claim and its flag answered EBUSY. Found by review, 2026-12-06,
/// twenty-seventh session.)
package final class MapFreezeState: Sendable {
    private let frozen = Atomic<Bool>(false)
    /// Set once a freeze's grace period is over: every write that saw the map unfrozen has
    /// finished. (``RawMap/isFrozen`` reports the flag, which the layers above check inside
    /// their sections, as the writers here do.)
    private let settled = Atomic<Bool>(false)
    /// The process whose thread froze the map (set with the flag): in a forked child no
    /// thread will complete that freeze.
    private let freezer = Atomic<Int32>(0)
    /// The freezer's process's fork count (`Epoch.forkIncarnations`), stored before its pid:
    /// a descendant given the freezer's recycled pid still tells itself apart.
    private let freezerForks = Atomic<UInt64>(0)
    /// Writable mappings that exist now; bit 62 is set while a freeze is in progress.
    private let writableMappings = Atomic<Int>(0)
    private static let freezing = 1 << 62

    package init() {}

    #if DEBUG
    /// Tests (debug builds only): runs in a freeze once it has claimed the freezing bit,
    /// before it stores its pid and sets the flag (a freezer preempted there). Set before
    /// the map is shared.
    package nonisolated(unsafe) var afterClaim: (() -> Void)?
    #endif

    /// Whether the map is frozen. Checked by user-mode writes inside their section.
    @inline(__always)
    package var isFrozen: Bool { frozen.load(ordering: .acquiring) }

    /// Freezes the map (Linux `BPF_MAP_FREEZE`).
    ///
    /// - Throws: ``MapError/unsupportedByMapType`` (ENOTSUPP) for a map whose values hold a
    ///   lock word; ``MapError/permissionDenied`` (EPERM) if user mode may not write
    ///   (`BPF_F_RDONLY`) or the map is already frozen; ``MapError/busy`` (EBUSY) while a
    ///   writable mapping of its storage exists, or when called inside an epoch section or a
    ///   liburcu read lock the thread took itself (where it cannot wait for writes in flight).
    ///
    /// `waitForUnsectionedWrites` runs once the flag is set and its grace period is over,
    /// before a second freeze may answer "frozen already": the type's wait for writes that
    /// hold no section but check the flag under a lock (take and release that lock). Run
    /// after the answer was allowed, a second freeze answered while such a write, which had
    /// seen the map unfrozen, was still to land (found by review, 2026-12-06, thirtieth
    /// session).
    package func freeze(access: MapAccess, lockWord: Bool,
                        waitingFor waitForUnsectionedWrites: () -> Void = {}) throws(MapError) {
        guard !lockWord else {
            throw MapError.unsupportedByMapType.with(reason: "a map whose values hold a lock word cannot be frozen")
        }
        guard access.userWrite else { throw MapError.permissionDenied.with(reason: "the map is BPF_F_RDONLY") }
        guard !frozen.load(ordering: .acquiring) else { throw try frozenAlready() }
        guard !Epoch.isInsideAnyReadLock else {
            // (A liburcu read lock the thread took itself too: the freeze's grace period
            // waited for it forever; found by review, 2026-12-05, nineteenth session.)
            throw MapError.busy.with(reason: "a map cannot be frozen from inside an epoch section or a liburcu read lock")
        }
        // Refuse while a writable mapping exists; hold off new ones while we freeze.
        let (claimed, mappings) = writableMappings.compareExchange(expected: 0, desired: Self.freezing,
                                                                   ordering: .acquiringAndReleasing)
        guard claimed else {
            // Another freeze claimed it (and is about to set the flag, or waits for writes).
            if mappings & Self.freezing != 0 { throw try frozenAlready() }
            throw MapError.busy.with(reason: "\(mappings & ~Self.freezing) writable mapping(s) of the map exist")
        }
        defer { writableMappings.wrappingSubtract(Self.freezing, ordering: .releasing) }
        #if DEBUG
        afterClaim?()
        #endif
        freezerForks.store(Epoch.forkIncarnations, ordering: .relaxed)
        freezer.store(getpid(), ordering: .releasing)
        guard !frozen.exchange(true, ordering: .acquiringAndReleasing) else { throw try frozenAlready() }
        // Writes that checked the flag before it was set are inside sections: wait for them,
        // then for those that checked it under a lock of the type's.
        Epoch.synchronize()
        waitForUnsectionedWrites()
        settled.store(true, ordering: .releasing)
    }

    /// The answer to a freeze that finds another begun: EPERM once that one has completed
    /// (waited for here, as long as its grace period takes), or EBUSY inside an epoch
    /// section or a liburcu read lock, which that grace period would wait for. In a child
    /// forked while a freeze waited, no thread will complete it: there the answer is EPERM
    /// at once (the flag is set, and nothing of the parent's is in flight in the child).
    /// (A bound of 100,000 yields was 50 ms on an idle core: shorter than a grace period
    /// that waits for a reader.)
    private func frozenAlready() throws(MapError) -> MapError {
        let process = getpid()
        var unowned = 0
        while !settled.load(ordering: .acquiring) {
            if Epoch.isInsideAnyReadLock {
                return MapError.busy.with(
                    reason: "a freeze of the map is waiting for writes in flight, which this epoch section holds back")
            }
            // The flag may still be on its way (claimed, not yet set): wait for the freezer's pid
            // too — for a second at most (a child forked between the claim and the pid).
            let owner = freezer.load(ordering: .acquiring)
            if owner != 0 ? isAnotherProcess(owner, process) : unowned >= 10_000 { break }
            if owner == 0 { unowned += 1 }
            usleep(100)
        }
        return MapError.permissionDenied.with(reason: "the map is frozen already")
    }

    /// Whether the freezer whose pid is `owner` (loaded acquiring) is not this process: another
    /// pid, or this pid in a forked descendant that was given it (its fork count differs: a pid
    /// alone made such a descendant wait for a freeze no thread of it will finish; found by
    /// review, 2026-12-06, thirtieth session).
    private func isAnotherProcess(_ owner: Int32, _ process: Int32) -> Bool {
        owner != process || freezerForks.load(ordering: .relaxed) != Epoch.forkIncarnations
    }

    /// Counts a new writable mapping; refused on a frozen map (EPERM), also one whose
    /// freeze is still waiting for writes in flight.
    ///
    /// A freeze in progress sets `frozen` a few instructions after it claims the freezing
    /// bit, and never clears it: a mapping that finds the bit waits for the flag and answers
    /// EPERM, as Linux's `bpf_map_mmap` does, which waits for the freeze's mutex and then
    /// finds the map frozen. (It answered EBUSY, "being frozen", also for a map already
    /// frozen whose freeze was waiting for a grace period: found by review, 2026-12-06.) The
    /// wait ends only in a child forked between a freeze's claim and its flag, where no
    /// thread will ever set the flag: the mapping answers EBUSY there, once the freezer's
    /// pid shows it is another process's (or after a second, if the pid is not stored yet),
    /// as `frozenAlready()` tells. (A bound of 100,000 yields, about 22 ms, answered EBUSY
    /// in the parent too, while a preempted freezer had yet to set its flag: found by
    /// review, 2026-12-06, thirtieth session.)
    package func addWritableMapping() throws(MapError) {
        var current = writableMappings.load(ordering: .acquiring)
        let process = getpid()
        var unowned = 0
        while true {
            guard !frozen.load(ordering: .acquiring) else {
                throw MapError.permissionDenied.with(reason: "a frozen map cannot be mapped writable")
            }
            if current & Self.freezing != 0 {
                // Claimed, not yet flagged (the flag is loaded after the bit was seen).
                let owner = freezer.load(ordering: .acquiring)
                if owner != 0 ? isAnotherProcess(owner, process) : unowned >= 10_000 {
                    throw MapError.busy.with(reason: "the map is being frozen (its freeze has not marked it)")
                }
                if owner == 0 { unowned += 1 }
                usleep(100)
                current = writableMappings.load(ordering: .acquiring)
                continue
            }
            let (exchanged, original) = writableMappings.compareExchange(
                expected: current, desired: current + 1, ordering: .acquiringAndReleasing)
            if exchanged { return }
            current = original
        }
    }

    /// Uncounts a writable mapping.
    package func removeWritableMapping() {
        writableMappings.wrappingSubtract(1, ordering: .releasing)
    }
}

// MARK: - The checks, shared by the maps (error paths out of line)

extension MapAccess {
    @inlinable @inline(__always)
    package func checkUserRead() throws(MapError) {
        if _slowPath(!userRead) { throw accessError("read", "BPF_F_WRONLY") }
    }

    @inline(__always)
    package func checkUserWrite(_ state: MapFreezeState) throws(MapError) {
        if _slowPath(!userWrite) { throw accessError("write", "BPF_F_RDONLY") }
        if _slowPath(state.isFrozen) { throw frozenError }
    }

    @inlinable @inline(__always)
    package func checkProgramRead() throws(MapError) {
        if _slowPath(!programRead) { throw accessError("helper-mode read", "BPF_F_WRONLY_PROG") }
    }

    @inlinable @inline(__always)
    package func checkProgramWrite() throws(MapError) {
        if _slowPath(!programWrite) { throw accessError("helper-mode write", "BPF_F_RDONLY_PROG") }
    }
}

/// EPERM (user mode) or EACCES (helper mode) for an access the map's flags refuse.
@usableFromInline @inline(never)
func accessError(_ what: StaticString, _ flag: StaticString) -> MapError {
    let helper = "\(what)".hasPrefix("helper")
    return (helper ? MapError.accessDenied : MapError.permissionDenied).with(reason: "\(what) refused: the map is \(flag)")
}

/// EPERM for a user-mode write to a frozen map.
@usableFromInline
let frozenError = MapError.permissionDenied.with(reason: "the map is frozen")

// MARK: - Operation flags

/// Flags of lookups, deletes, lookup-and-delete and batches (Linux's per-element flags).
///
/// The only one is `BPF_F_LOCK`; any other bit is EINVAL, as on Linux.
public struct MapElementFlags: OptionSet, Hashable, Sendable {
    /// The raw value.
    public var rawValue: UInt64
    /// Wraps a raw value (not validated here: maps validate what they are given).
    @inlinable public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// `BPF_F_LOCK` (4): copy the value with the element's lock word held (a map whose
    /// definition names one, ``MapDefinition/lockOffset``; EINVAL otherwise).
    @inlinable public static var lock: MapElementFlags { MapElementFlags(rawValue: 4) }
}
