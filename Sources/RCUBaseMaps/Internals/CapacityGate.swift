import CRCUMapsShim
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `maxEntries` enforcement shared by the hash maps: a count that never exceeds
/// `maxEntries`, kept without a write that every writer thread shares.
///
/// The global `count` holds the entries plus *credits*: units a thread took (or freed) but
/// has not used, parked in its stripe. A new key takes a credit from its thread's stripe,
/// or a batch of credits from `count` (never past `maxEntries`); a removal, or a reservation
/// that was not published, parks its unit in the stripe as a credit (a stripe with too many
/// gives a batch back). So `count` never exceeds `maxEntries`, not even transiently, and
/// entries = `count` - the credits. Writers on different threads touch only their own
/// stripe's cache line on the common path (before this, every insert and delete wrote two
/// shared counters: two-thread churn ran slower than one thread).
///
/// Between a reservation and its resolution, and between an unlink and its credit, the
/// changing thread is *in flight* (counted in its stripe). A reservation that finds the map
/// full as counted first takes back every parked credit; if there is none, it waits —
/// yielding — while any change is in flight, instead of reporting a spurious E2BIG. Only
/// plain `HASH` writers wait so (the LRU paths' `reserveIfRoom()` and `hasNoRoom()` never
/// wait), and the changes they can meet do not block on a lock or a grace period: each runs
/// under its own chain's lock, or inside a lock-free operation, and at worst allocates (a
/// growing insert's overflow bucket), so the wait is short; it only ever happens when the map
/// is full. (An LRU writer's unit may stay in flight while it sleeps on its chain's lock, but
/// no one waits for it.)
///
/// Stripes are per thread (``rcumaps_thread_stripe()``, round-robin), not per CPU: a
/// thread keeps its stripe, and the sums over stripes are what the rules use, so two
/// threads sharing one stripe only share a cache line.
struct CapacityGate: ~Copyable {
    let maxEntries: Int
    /// Entries plus parked credits; never above `maxEntries`.
    let count = Atomic<Int>(0)
    /// Credits a stripe takes from `count` at once (1 for small maps, where parked credits
    /// would be a large share of the capacity).
    let batch: Int
    let stripeMask: Int
    /// Invariant: `stripeMask + 1` stripes of ``stripeStride`` bytes, 64-byte aligned, each
    /// holding one initialised `Atomic<Int>`, the stripe's *word*: its parked credits in
    /// bits 0..<16 (at most two batches and one, 129), its changes in flight in bits 16..<32
    /// (at most the threads of the stripe; both never negative), and in bits 32..<64 the
    /// changes *begun* in the stripe, a counter that only grows (wrapping). One word, so that
    /// a change takes a credit and announces itself in flight — or parks a credit and
    /// leaves — in one atomic operation, and counts itself begun in the same one.
    private let stripes: UnsafeMutableRawPointer

    /// Tests only: runs inside ``drainCredits()`` after a stripe's credits were taken and
    /// before they are returned to `count` (the window a waiter must see as in flight).
    let drainPause: (@Sendable () -> Void)?
    /// Tests only: the same window in ``parkAndLeave(_:)``, when a stripe with too many
    /// credits gives a batch back to `count`.
    let givebackPause: (@Sendable () -> Void)?

    private static let stripeStride = 64
    /// One change in flight, in a stripe's word.
    private static let flightUnit = 1 << 16
    /// One change in flight and one more begun: what a change adds as it announces itself.
    private static let beginUnit = 1 << 16 | 1 << 32
    private static let creditMask = flightUnit - 1
    private static let flightMask = (1 << 32) - flightUnit

    init(maxEntries: Int, drainPause: (@Sendable () -> Void)? = nil, givebackPause: (@Sendable () -> Void)? = nil) {
        self.maxEntries = maxEntries
        self.drainPause = drainPause
        self.givebackPause = givebackPause
        let stripeCount = ThreadStripes.count()
        stripeMask = stripeCount - 1
        // Parked credits stay below 3 batches a stripe: at most 1/16 of the capacity.
        batch = max(1, min(64, maxEntries / (48 * stripeCount)))
        stripes = UnsafeMutableRawPointer.allocate(byteCount: stripeCount * Self.stripeStride, alignment: 64)
        for index in 0..<stripeCount {
            (stripes + index * Self.stripeStride).bindMemory(to: Atomic<Int>.self, capacity: 1).initialize(to: Atomic(0))
        }
    }

    deinit {
        stripes.deallocate()
    }

    @inline(__always)
    private func word(_ index: Int) -> UnsafeMutablePointer<Atomic<Int>> {
        (stripes + index &* Self.stripeStride).assumingMemoryBound(to: Atomic<Int>.self)
    }

    @inline(__always)
    private static func credits(_ word: Int) -> Int { word & creditMask }

    /// The calling thread's stripe.
    @inline(__always)
    var ownStripe: Int { Int(rcumaps_thread_stripe()) & stripeMask }

    /// Entries in the map (a snapshot).
    var entries: Int {
        var parked = 0
        for index in 0...stripeMask { parked += Self.credits(word(index).pointee.load(ordering: .relaxed)) }
        return min(maxEntries, max(0, count.load(ordering: .relaxed) - parked))
    }

    enum Outcome { case reserved, exists, full }

    /// Reserves a slot for a new key. `keyExists` is asked whenever the map looks full
    /// (Linux reports an existing key before a full map). A `.reserved` outcome must be
    /// followed by ``resolve(published:)``, on the same thread.
    func reserve(keyExists: () -> Bool) -> Outcome {
        let stripe = ownStripe
        while true {
            if takeUnit(stripe) { return .reserved }
            // Full as counted: the credits parked in other stripes are room too.
            if drainCredits() > 0 { continue }
            if keyExists() { return .exists }
            if changesInFlight() == 0 {
                // A change that ended just now parked its credit as it left the in-flight
                // count: a second drain finds it. Then a racing insert of this very key may have
                // published and resolved since the first look: it publishes before it
                // resolves, so a second look after seeing no change in flight finds it.
                if drainCredits() > 0 { continue }
                guard let before = quietChangesBegun() else { continue }
                if count.load(ordering: .acquiring) >= maxEntries {
                    if keyExists() { return .exists }
                    // Absent at the second look. Full only if no change began anywhere
                    // around that look (nothing in flight, nothing parked, the same changes
                    // begun before and after it): then every unit of the full count was a
                    // present key at the moment the key was seen absent. The look alone
                    // answered E2BIG for a map with room — a key inserted and deleted again by
                    // another thread during this check, its unit on the way back — and
                    // checking the in-flight counts once more missed a delete and insert of
                    // the key that both ended before it (found by review, 2026-12-06:
                    // `rcumaps bench --maps hash-lockfree --workloads churn --threads 2
                    // --entries 1` failed 417 of 12.2 M inserts with E2BIG).
                    if quietChangesBegun() == before { return .full }
                }
                continue
            }
            sched_yield()
        }
    }

    /// Reserves a slot for a new key if the map has room, never waiting: a unit from the
    /// thread's stripe or from `count`, else the credits parked in other stripes. `false`
    /// means full as counted (changes in flight may free room a moment later): an LRU map
    /// then evicts instead. A `true` must be followed by ``resolve(published:)``.
    func reserveIfRoom() -> Bool {
        let stripe = ownStripe
        while true {
            if takeUnit(stripe) { return true }
            if drainCredits() == 0 { return false }
        }
    }

    /// Whether ``reserveIfRoom()`` would find no room now: the map full as counted and no
    /// credit parked in any stripe. Only loads, inlined: a full LRU map asks before every
    /// insert, and the two calls of ``reserveIfRoom()`` that give the same answer cost about
    /// 85 instructions. As racy as ``reserveIfRoom()``'s own `false` (a change in flight
    /// may free room a moment later).
    @inline(__always)
    func hasNoRoom() -> Bool {
        guard count.load(ordering: .acquiring) >= maxEntries else { return false }
        for index in 0...stripeMask where Self.credits(word(index).pointee.load(ordering: .acquiring)) > 0 {
            return false
        }
        return true
    }

    /// Counts a new key whose publication can no longer fail: the caller holds the key's
    /// chain lock, has found the key absent and has filled its slot, and publishes it next.
    /// `false`: the map is full (E2BIG).
    ///
    /// The common case takes one credit parked in the thread's stripe in one exchange and
    /// never announces itself in flight: with nothing left that could fail, no reservation
    /// has to wait for it to end, so there is nothing to resolve (one atomic operation an
    /// insert fewer than ``reserve(keyExists:)`` and ``resolve(published:)``). The key is
    /// counted a moment before it is visible, as Linux counts an element (`htab->count`,
    /// or the element taken from its free list) before linking it: an insert elsewhere
    /// that finds the map full in that moment is answered E2BIG for a key that is being
    /// published, never for room that is on its way back. Without a credit in the
    /// stripe: ``reserve(keyExists:)`` (the key is known absent), resolved at once.
    @inline(__always)
    func claim() -> Bool {
        let word = word(ownStripe)
        var current = word.pointee.load(ordering: .relaxed)
        while Self.credits(current) > 0 {
            let (exchanged, original) = word.pointee.compareExchange(
                expected: current, desired: current &- 1, ordering: .acquiringAndReleasing)
            if exchanged { return true }
            current = original
        }
        return claimWithoutCredit()
    }

    /// ``claim()`` when the thread's stripe holds no credit.
    @inline(never)
    private func claimWithoutCredit() -> Bool {
        guard case .reserved = reserve(keyExists: { false }) else { return false }
        resolve(published: true)
        return true
    }

    /// Takes one unit for `stripe`'s thread, announcing it in flight; `false` (and not in
    /// flight) when the map is full as counted and the stripe holds no credit.
    @inline(__always)
    private func takeUnit(_ stripe: Int) -> Bool {
        let word = word(stripe)
        // A parked credit: taken and announced in flight in one exchange.
        var current = word.pointee.load(ordering: .acquiring)
        while Self.credits(current) > 0 {
            let (exchanged, original) = word.pointee.compareExchange(
                expected: current, desired: current &- 1 &+ Self.beginUnit, ordering: .acquiringAndReleasing)
            if exchanged { return true }
            current = original
        }
        // Only a thread that may get a slot announces itself: a waiter that sees the map
        // full stays out of the in-flight counts, or waiters would keep each other waiting
        // (with more threads than cores, and bucket locks held, that collapsed throughput).
        guard count.load(ordering: .acquiring) < maxEntries else { return false }
        word.pointee.wrappingAdd(Self.beginUnit, ordering: .acquiringAndReleasing)
        // Compare-and-swap, never add-then-undo: `count` must never read above maxEntries.
        var counted = count.load(ordering: .acquiring)
        while counted < maxEntries {
            let taken = min(batch, maxEntries - counted)
            let (exchanged, original) = count.compareExchange(
                expected: counted, desired: counted + taken, ordering: .acquiringAndReleasing)
            if exchanged {
                // Parked while still in flight, so a waiter that drains finds them.
                if taken > 1 { word.pointee.wrappingAdd(taken - 1, ordering: .acquiringAndReleasing) }
                return true
            }
            counted = original
        }
        word.pointee.wrappingSubtract(Self.flightUnit, ordering: .acquiringAndReleasing)
        return false
    }

    /// Ends a reservation: kept if the key was published, parked as a credit otherwise.
    func resolve(published: Bool) {
        let stripe = ownStripe
        if published {
            word(stripe).pointee.wrappingSubtract(Self.flightUnit, ordering: .acquiringAndReleasing)
        } else {
            parkAndLeave(stripe)
        }
    }

    /// Announces a removal attempt (before the unlink).
    func beginRemoval() {
        word(ownStripe).pointee.wrappingAdd(Self.beginUnit, ordering: .acquiringAndReleasing)
    }

    /// Ends a removal attempt: parks the entry's unit as a credit if it was unlinked.
    func endRemoval(removed: Bool) {
        let stripe = ownStripe
        if removed {
            parkAndLeave(stripe)
        } else {
            word(stripe).pointee.wrappingSubtract(Self.flightUnit, ordering: .acquiringAndReleasing)
        }
    }

    /// Ends a removal whose unit goes straight to a new key of the same thread (an LRU
    /// eviction that makes room for an insert): the thread stays in flight, now with a
    /// reservation, which it ends with ``resolve(published:)`` — published, or parked as a
    /// credit if the key was not inserted after all. No credit is parked and none taken
    /// back, so no other thread can take the room the eviction made. Nothing to change in
    /// the counts: the removal's unit is already counted and in flight. (An eviction that
    /// never announced itself — `evictHolding(_:forUserWrite:announced:)` with `announced:
    /// false` — is not in flight: its caller, which cannot fail after it, publishes the key
    /// without ``resolve(published:)``.)
    @inline(__always)
    func keepRemovedUnitAsReservation() {}

    /// Parks one unit in `stripe` and leaves its in-flight count, in one atomic add; a
    /// stripe holding more than two batches gives one back.
    ///
    /// The batch given back is on its way for a moment (taken from the stripe, not yet off
    /// `count`): the thread counts as in flight again until it has arrived, as a drainer
    /// does, so that a reservation that finds the map full then waits instead of reporting
    /// a spurious E2BIG (found by the address-sanitizer run of 2026-12-04 under load: the
    /// object map's churn on the lock-free base, 8 keys in a map of 8, saw E2BIG).
    @inline(__always)
    private func parkAndLeave(_ stripe: Int) {
        let word = word(stripe)
        let after = word.pointee.wrappingAdd(1 &- Self.flightUnit, ordering: .acquiringAndReleasing).newValue
        if Self.credits(after) > 2 * batch,
           word.pointee.compareExchange(expected: after, desired: after &- batch &+ Self.beginUnit,
                                        ordering: .acquiringAndReleasing).exchanged {
            givebackPause?()
            count.wrappingSubtract(batch, ordering: .acquiringAndReleasing)
            word.pointee.wrappingSubtract(Self.flightUnit, ordering: .acquiringAndReleasing)
        }
    }

    /// Moves every parked credit back to `count`; returns how many there were.
    ///
    /// While a stripe's credits are on their way (taken from the stripe, not yet taken off
    /// `count`), the drainer counts as in flight in that stripe: a reservation that finds
    /// the map full as counted then waits for it instead of reporting a spurious E2BIG
    /// (found by review, 2026-12-03: the credits were in neither place for that moment).
    private func drainCredits() -> Int {
        var drained = 0
        // A stripe with nothing parked is only read: a full LRU map drains on every insert.
        for index in 0...stripeMask {
            let word = word(index)
            var current = word.pointee.load(ordering: .acquiring)
            while Self.credits(current) > 0 {
                let (exchanged, original) = word.pointee.compareExchange(
                    expected: current, desired: (current & ~Self.creditMask) &+ Self.beginUnit,
                    ordering: .acquiringAndReleasing)
                if exchanged {
                    let taken = Self.credits(current)
                    drainPause?()
                    count.wrappingSubtract(taken, ordering: .acquiringAndReleasing)
                    word.pointee.wrappingSubtract(Self.flightUnit, ordering: .acquiringAndReleasing)
                    drained += taken
                    break
                }
                current = original
            }
        }
        return drained
    }

    /// Changes in flight over every stripe.
    func changesInFlight() -> Int {
        var total = 0
        for index in 0...stripeMask { total &+= (word(index).pointee.load(ordering: .acquiring) & Self.flightMask) >> 16 }
        return total
    }

    /// The changes begun over every stripe if none is in flight and no credit is parked in
    /// any, else nil. Each stripe's count of changes begun only grows, so two equal answers
    /// mean that no change began in any stripe between its reads in the first and in the
    /// second: whatever was looked at between the two calls saw the map as it was at both.
    private func quietChangesBegun() -> Int? {
        var total = 0
        for index in 0...stripeMask {
            let word = word(index).pointee.load(ordering: .acquiring)
            guard word & (Self.flightMask | Self.creditMask) == 0 else { return nil }
            total &+= word >> 32
        }
        return total
    }
}
