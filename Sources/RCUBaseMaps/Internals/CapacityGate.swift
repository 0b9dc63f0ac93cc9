import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `maxEntries` enforcement shared by the hash maps: a count of entries plus a count of
/// changes in flight, so that a map reports E2BIG only when it is really full.
///
/// A new key first *reserves* a slot by compare-and-swap (the count never exceeds
/// `maxEntries`, not even transiently, so the map is never over its bound), then publishes
/// and resolves the reservation. A removal is counted
/// out only after its unlink. Between those steps the count can be one off in either
/// direction (a reservation for a key a racing thread inserts first; a key already unlinked
/// but not yet counted out). A reservation that fails therefore waits — yielding — while any
/// change is in flight, instead of reporting a spurious E2BIG. In-flight changes never block,
/// so the wait is short; it only ever happens when the map is at its bound.
struct CapacityGate: ~Copyable {
    let maxEntries: Int
    let count = Atomic<Int>(0)
    let inFlight = Atomic<Int>(0)

    init(maxEntries: Int) { self.maxEntries = maxEntries }

    /// Entries in the map (a snapshot).
    var entries: Int { count.load(ordering: .relaxed) }

    enum Outcome { case reserved, exists, full }

    /// Reserves a slot for a new key. `keyExists` is asked whenever the map looks full
    /// (Linux reports an existing key before a full map). A `.reserved` outcome must be
    /// followed by ``resolve(published:)``.
    func reserve(keyExists: () -> Bool) -> Outcome {
        while true {
            // Only a thread that may bump the count announces itself: a waiter that sees the
            // map full stays out of `inFlight`, or waiters would keep each other waiting
            // (with more threads than cores, and bucket locks held, that collapsed throughput).
            if count.load(ordering: .acquiring) < maxEntries {
                inFlight.wrappingAdd(1, ordering: .acquiringAndReleasing)
                // Compare-and-swap, never add-then-undo: `count` must never read above maxEntries.
                var current = count.load(ordering: .acquiring)
                while current < maxEntries {
                    let (exchanged, original) = count.compareExchange(
                        expected: current, desired: current + 1, ordering: .acquiringAndReleasing)
                    if exchanged { return .reserved }
                    current = original
                }
                inFlight.wrappingSubtract(1, ordering: .acquiringAndReleasing)
            }
            if keyExists() { return .exists }
            if inFlight.load(ordering: .acquiring) == 0, count.load(ordering: .acquiring) >= maxEntries {
                // A racing insert of this very key may have published and resolved between
                // the first look and the in-flight check: it publishes before it resolves,
                // so a second look after seeing no change in flight finds it.
                return keyExists() ? .exists : .full
            }
            sched_yield()
        }
    }

    /// Ends a reservation: kept if the key was published, returned otherwise.
    func resolve(published: Bool) {
        if !published { count.wrappingSubtract(1, ordering: .acquiringAndReleasing) }
        inFlight.wrappingSubtract(1, ordering: .acquiringAndReleasing)
    }

    /// Announces a removal attempt (before the unlink).
    func beginRemoval() { inFlight.wrappingAdd(1, ordering: .acquiringAndReleasing) }

    /// Ends a removal attempt: counts the entry out if it was unlinked.
    func endRemoval(removed: Bool) {
        if removed { count.wrappingSubtract(1, ordering: .acquiringAndReleasing) }
        inFlight.wrappingSubtract(1, ordering: .acquiringAndReleasing)
    }
}
