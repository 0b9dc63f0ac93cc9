import CRCUMapsShim
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The eviction state of an LRU map (`LRU_HASH`, `LRU_PERCPU_HASH`): CLOCK, or second
/// chance, over the bucket table.
///
/// Recency lives in the buckets' control words: one *referenced* bit per slot
/// (``BucketTable/referencedShift``). A lookup that finds its slot's bit clear sets it with
/// one atomic OR; a lookup that finds it set writes nothing, so a hot entry is read-only
/// for its readers, and no lookup takes a lock or touches a word shared by every thread.
/// A new entry is published referenced.
///
/// Eviction: a writer that needs room in a full map advances a *hand* over the first-level
/// buckets (one atomic add per bucket visited, or per claim of up to 64 buckets in a table
/// of 64 buckets or more: see ``advance()``; first while it holds its own chain's lock, trying the
/// others': `RawBucketHashMap.evictHolding`), and under each chain's lock clears the
/// referenced bits of its live slots and evicts the first slot whose bit was already clear
/// — an entry not looked up since the hand last passed. A writer sweeps the bucket its
/// tick of the hand named only while the tick is fresh: if the hand has moved on by more
/// than half a lap when the writer holds the lock (the writer was preempted, or waited
/// for the lock), the tick is dropped. So an entry is evicted only on a second pass over it
/// after its insert (or, in the plain laps, its last use), by a later tick, and the hand
/// moves on by at least ``guaranteedDistance`` ticks (``ticks``) between an insert and the
/// eviction of that entry — in the plain and forced laps below; the last lap has no such
/// guarantee. (The forced laps take entries whatever their bits: for them, a use is no
/// reprieve.)
/// A writer whose plain sweep finds no victim — two laps, or, where two laps hold more,
/// 2,048 used entries passed over (every entry it passed used again in between:
/// `RawBucketHashMap.plainSweepUsedEntries`) — makes one *forced* lap, which
/// evicts the first entry of a bucket no write published into since the hand last passed
/// it, used or not (``BucketTable/forcedVictim(inChainOf:sparingWritten:)``;
/// Linux's forced shrink ignores the reference bit too): readers that use every entry
/// faster than the sweep cannot starve an insert, and an entry just written still outlives
/// the hand's next pass. When that lap finds no victim either — writers wrote into every
/// bucket within it (updates of existing keys faster than the sweep), or its ticks went
/// stale (other writers' evictions moved the hand past them while this writer waited for
/// their chains' locks) — a last lap takes the first entry of any bucket: an insert's sweep
/// is at most its plain part (two laps, or 2,048 used entries where two laps hold more) and
/// two more laps, the forced one and the last — four laps in a table whose two laps hold
/// fewer than 2,048 entries (and only in the last lap's cases may an entry written a moment
/// before be the victim). A writer yields and tries again only for a map whose
/// every tick went stale, or sweeps with no live entry to take (every unit of room is
/// in flight with other writers: it tries until one of them publishes). A user write to a
/// map frozen during its sweep stops sweeping at once, evicts nothing, and fails with
/// EPERM at its next locked pass.
///
/// `BPF_F_NO_COMMON_LRU` sweeps the same way: one hand, whose claims already give evicting
/// writers on different CPUs runs of buckets of their own. (Each CPU had a hand over its own
/// share of the buckets, while new keys land in any share by their hash: a writer that stays
/// on one CPU emptied its share, then swept two laps of it, clearing the bits of the few
/// keys just written there, per insert — 1.5 ms an insert at 100,000 entries — and evicted
/// its newest keys first. Found by review, 2026-12-06; see docs/linux-compatibility.md.)
///
/// Concurrency: any thread. Invariant: `handLine` holds one initialised atomic, alone in
/// its cache line.
final class RecencyClock: @unchecked Sendable {
    // @unchecked Sendable: `handLine` is allocated once and only accessed through atomics.
    let bucketCount: Int
    private let handLine: UnsafeMutableRawPointer

    /// Ticks a writer claims from the hand at once: 64, or a sixteenth of a lap in a smaller
    /// map; 1 (no claims) in maps of under 64 buckets. See ``advance()``.
    let claimSize: Int
    /// The claims, one per thread stripe: word 0 the claim's next tick, word 1
    /// its end. Nil without claims.
    private let claims: TryLockedStripes?
    /// `claims`' memory, reached without a retain (`claims` keeps it alive).
    private let claimLines: TryLockedStripes.Lines?

    init(bucketCount: Int) {
        self.bucketCount = bucketCount
        handLine = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 64)
        handLine.bindMemory(to: Atomic<Int>.self, capacity: 1).initialize(to: Atomic(0))
        // Without memory for the claims, every tick is taken alone.
        claims = bucketCount >= 64 ? TryLockedStripes() : nil
        claimSize = claims == nil ? 1 : min(64, bucketCount / 16)
        claimLines = claims?.unretainedLines
    }

    deinit {
        handLine.deallocate()
    }

    /// Tests only: runs after each tick of the general sweep that found no victim, with no
    /// lock held (a test uses every entry there, as fast readers would). Set before the map
    /// is shared.
    nonisolated(unsafe) var afterEmptyTick: (@Sendable () -> Void)?

    /// Ticks of the hand so far (a snapshot).
    var ticks: Int { hand.pointee.load(ordering: .acquiring) }

    /// Ticks of the hand between an entry's insert and its eviction, at least: half a lap
    /// (see the type's documentation; also after its last use, in the plain laps).
    var guaranteedDistance: Int { bucketCount / 2 }

    private var hand: UnsafeMutablePointer<Atomic<Int>> { handLine.assumingMemoryBound(to: Atomic<Int>.self) }

    /// Moves the hand on by one bucket; returns that bucket and the tick.
    ///
    /// Writers claim ``claimSize`` ticks of the hand at a time (tables of 64 buckets or more), one claim
    /// per thread stripe, and take their ticks from it in order. With one tick per atomic
    /// add, two evicting threads took turns on the hand's cache line and on the lines of
    /// neighbouring buckets, and a lock of the next bucket waited for the other core's copy
    /// of its line (42 % of the sweep's samples at two threads); with claims, each sweeps a
    /// run of its own. A claimed tick is swept only while fresh (``isFresh(_:)``), as
    /// any tick, so the guaranteed distance holds; a claim gone stale (the hand moved on by
    /// half a lap since) is dropped for a new one. A writer whose stripe's claim is in use
    /// by another thread takes a single tick. A sweep of several ticks holds its stripe's
    /// claim across them (``takeClaim()``). Inlined into the sweeps: called, it was 16
    /// instructions an evicting insert (two ticks).
    @inline(__always)
    func advance() -> (bucket: Int, tick: Int) {
        var claim = takeClaim()
        let taken = advance(claim: &claim)
        if let claim { returnClaim(claim) }
        return taken
    }

    /// A claim (see ``advance()``), copied out of its stripe while the stripe is held: the
    /// claim's next tick, its end, and the next tick's bucket (the bucket of a tick is
    /// divided out once a claim, and its successors counted on, wrapping at the table's end).
    struct Claim {
        /// The stripe's words (its lock held).
        let words: UnsafeMutableRawPointer
        var next: Int
        var end: Int
        var bucket: Int
    }

    /// The calling thread's stripe's claim, its stripe held until ``returnClaim(_:)``, if the
    /// map has claims and the stripe is free at once; else nil (the caller takes single
    /// ticks). A holder waits for nothing but chain locks it only tries, and takes no other
    /// claim. (A sweep of several ticks holds one claim across them: before, each tick took
    /// and released the stripe, an atomic exchange and three stores to its line a tick.)
    @inline(__always)
    func takeClaim() -> Claim? {
        guard let words = claimLines?.tryTakeOwnStripe() else { return nil }
        return Claim(words: words, next: words.load(as: Int.self), end: words.load(fromByteOffset: 8, as: Int.self),
                     bucket: words.load(fromByteOffset: 16, as: Int.self))
    }

    /// Writes `claim` back to its stripe and releases the stripe.
    @inline(__always)
    func returnClaim(_ claim: Claim) {
        claim.words.storeBytes(of: claim.next, as: Int.self)
        claim.words.storeBytes(of: claim.end, toByteOffset: 8, as: Int.self)
        claim.words.storeBytes(of: claim.bucket, toByteOffset: 16, as: Int.self)
        TryLockedStripes.Lines.release(claim.words)
    }

    /// ``advance()`` with a claim ``takeClaim()`` took (nil: a single tick of the hand).
    @inline(__always)
    func advance(claim: inout Claim?) -> (bucket: Int, tick: Int) {
        if var current = claim {
            if current.next == current.end
                || hand.pointee.load(ordering: .relaxed) &- current.next > bucketCount / 2 {
                current.next = hand.pointee.wrappingAdd(claimSize, ordering: .acquiringAndReleasing).oldValue
                current.end = current.next &+ claimSize
                current.bucket = Int(UInt(bitPattern: current.next) % UInt(bucketCount))
            }
            let taken = (current.bucket, current.next)
            current.next &+= 1
            let following = current.bucket &+ 1
            current.bucket = following == bucketCount ? 0 : following
            claim = current
            return taken
        }
        let step = hand.pointee.wrappingAdd(1, ordering: .acquiringAndReleasing).oldValue
        return (Int(UInt(bitPattern: step) % UInt(bucketCount)), step)
    }

    /// Whether `tick` may still be swept: the hand has not moved on by more than half a
    /// lap since (call with the tick's bucket locked). Were a stale tick
    /// swept, a later tick of the same bucket could have swept first, and the pair would
    /// evict an entry inserted between them after two passes but no lap. The hand is
    /// already one past `tick` (`advance` returns the old value): a tick with no later one
    /// is always fresh, also in a table of one bucket, where half a lap is 0 (with `<=
    /// lap / 2` alone, no tick there was ever fresh, and the first eviction of a map of
    /// one bucket, `maxEntries` 1 or 2, spun forever).
    func isFresh(_ tick: Int) -> Bool {
        hand.pointee.load(ordering: .acquiring) &- tick <= Swift.max(1, bucketCount / 2)
    }
}

extension BucketTable {
    /// Whether chain `index` holds no live slot and no overflow bucket, read without its
    /// lock: a tick of the sweep that lands there has nothing to evict and passes on without
    /// taking the lock (an LRU table is sized for twice its entries, so about a third of
    /// its chains are empty and a third of the ticks land on one). A slot published there
    /// after this read is published referenced, which a plain sweep would have spared, and a
    /// forced one spares too (a bucket written since the hand passed); the bits the sweep
    /// would have cleared belong to no live slot.
    @inline(__always)
    func chainLooksEmpty(_ index: Int) -> Bool {
        let first = bucket(index)
        return loadControl(first) & liveTagBits == 0 && overflow(first) == nil
    }

    /// One step of the CLOCK sweep, under the lock of chain `index`: clears the referenced
    /// bits of the chain's slots and returns the first live slot whose bit was already clear,
    /// or nil. Adds the live slots of the buckets it looked at to `spared` (all of them used,
    /// when it returns nil).
    @inline(__always)
    func clockVictim(inChainOf index: Int, spared: inout Int) -> RawBucketHashMap.Place? {
        var victim: RawBucketHashMap.Place?
        var current: UnsafeMutableRawPointer? = bucket(index)
        while let bucket = current {
            let word = control(bucket)
            let control = word.pointee.load(ordering: .acquiring)
            if victim == nil {
                // Only the live slots (a tag byte's high bit; a free or retired slot's byte
                // has it clear), lowest first: about one a bucket in a full LRU map.
                var live = control & liveTagBits
                spared &+= live.nonzeroBitCount
                while live != 0 {
                    let slot = live.trailingZeroBitCount &>> 3
                    if control & (1 &<< (Self.referencedShift &+ UInt64(slot))) == 0 {
                        victim = RawBucketHashMap.Place(bucket, slot)
                        break
                    }
                    live &= live &- 1
                }
            }
            // An AND, not a store: readers may be setting bits meanwhile (they only OR).
            if control & (Self.referencedMask | Self.insertedBit) != 0 {
                word.pointee.bitwiseAnd(~(Self.referencedMask | Self.insertedBit), ordering: .relaxed)
            }
            current = overflow(bucket)
        }
        return victim
    }

    /// One step of a *forced* sweep, under the lock of chain `index`, once the plain one
    /// (two laps, at most 2,048 used entries) found no victim (readers used every entry it passed
    /// again): clears
    /// the chain's bits as ``clockVictim(inChainOf:)`` does and returns the first live slot
    /// of the first bucket that no write published into since the sweep last passed it
    /// (``insertedBit`` clear), used or not, or nil. Linux's LRU does the same when its
    /// shrink frees nothing (`__bpf_lru_list_shrink`'s forced pass ignores the reference
    /// bit). Passing over freshly written buckets keeps an entry just written from being the
    /// victim before the hand has passed it once more — unless `sparingWritten` is false:
    /// the last lap, when writers wrote into every bucket within the forced lap too (they
    /// update existing keys faster than the sweep), takes the first live slot of any bucket,
    /// so an insert's work stays bounded (found by review, 2026-12-05).
    func forcedVictim(inChainOf index: Int, sparingWritten: Bool = true) -> RawBucketHashMap.Place? {
        var victim: RawBucketHashMap.Place?
        var current: UnsafeMutableRawPointer? = bucket(index)
        while let bucket = current {
            let word = control(bucket)
            let control = word.pointee.load(ordering: .acquiring)
            let live = control & liveTagBits
            if victim == nil, !sparingWritten || control & Self.insertedBit == 0, live != 0 {
                victim = RawBucketHashMap.Place(bucket, live.trailingZeroBitCount &>> 3)
            }
            if control & (Self.referencedMask | Self.insertedBit) != 0 {
                word.pointee.bitwiseAnd(~(Self.referencedMask | Self.insertedBit), ordering: .relaxed)
            }
            current = overflow(bucket)
        }
        return victim
    }
}

extension RawBucketHashMap {
    /// Ticks the eviction hand has made (0 for a `HASH`), and the fewest ticks between an
    /// entry's insert and its eviction (see `RecencyClock`). For tests and the stress run.
    package var evictionTicks: (ticks: Int, guaranteedDistance: Int) {
        (recency?.ticks ?? 0, recency?.guaranteedDistance ?? 0)
    }

    /// Buckets in the table (the eviction hands sweep them). For tests.
    package var bucketCountForTests: Int { table.bucketCount }

    /// Units the capacity gate has handed out (entries, those being inserted, and the
    /// credits evictions parked), not clamped to `maxEntries` as `count` is: the bound
    /// the gate keeps. For tests.
    package var capacityUnitsInUse: Int { capacity.count.load(ordering: .relaxed) }

    /// Writers between a reservation or an unlink and its resolution (0 when none is
    /// writing; a unit that stays in flight is lost room). For tests.
    package var capacityChangesInFlight: Int { capacity.changesInFlight() }

    /// Tests only: `hook` runs after each tick of the general eviction sweep that found no
    /// victim (``RecencyClock/afterEmptyTick``). Call before the map is shared.
    package func setAfterEmptyEvictionTick(_ hook: (@Sendable () -> Void)?) {
        recency?.afterEmptyTick = hook
    }

    /// Evicts one entry of a full LRU map (see `RecencyClock`): advances the hand chain by
    /// chain, each under its lock, until a chain yields a victim;
    /// retires it and hands its unit of capacity to the caller as a reservation (see
    /// ``CapacityGate/keepRemovedUnitAsReservation()``). Caller holds no lock (and needs no
    /// section: each chain is visited under its lock).
    ///
    /// Before, the unit was parked as a credit in the thread's stripe and reserved again:
    /// on a full map every evicting insert then drained every stripe's credits, and writers
    /// took each other's (the gate's work was 117 of 1,326 instructions an insert).
    /// When the plain sweep (two laps, at most ``plainSweepUsedEntries`` used entries) finds no victim, a
    /// forced lap follows, then a last one; only when
    /// those find no victim either (no live entry: every unit in flight with other writers)
    /// does the thread yield (the caller tries again).
    ///
    /// - Parameter forUserWrite: the eviction makes room for a user-mode write that checks
    ///   the freeze under its chain's lock (it holds no section): it evicts nothing once the
    ///   map is frozen, checked under each victim chain's lock. `freeze()` takes every chain
    ///   lock once after setting the flag, so no eviction for such a write happens after it
    ///   returns (the write then fails with EPERM on its next locked pass). Program-mode
    ///   writes go on evicting: a frozen map is read-only for user space only.
    /// - Returns: whether it evicted an entry, whose unit the caller now holds in flight
    ///   and must end with ``CapacityGate/resolve(published:)``.
    func evictLeastRecentlyUsed(forUserWrite: Bool) -> Bool {
        // The clock reached unretained: a strong reference bound here was retained and
        // released around every sweep, two writes to the clock's header that every evicting
        // thread shared. Invariant: `recency` keeps it alive as long as `self`.
        guard let clock = unretainedRecency else { return false }
        let swept = clock._withUnsafeGuaranteedRef { recency -> Eviction in
            // Two laps (at most 2,048 used entries), then, if every entry passed was used again, a
            // forced lap that spares buckets written since the hand passed, then one that spares none
            // (bounded work, as Linux's forced shrink: before, the writer yielded and swept
            // again for as long as readers kept every entry used).
            for sweep in [Sweep.plain, .forced, .last] {
                let eviction = evictOne(recency, forUserWrite: forUserWrite, sweep: sweep)
                if eviction != .none { return eviction }
            }
            return .none
        }
        switch swept {
        case .evicted: return true
        case .frozen: return false
        case .none:
            sched_yield()
            return false
        }
    }

    private enum Eviction { case evicted, none, frozen }

    /// The most used entries a plain sweep passes over (clearing their bits) before the
    /// forced lap, where two laps hold more. Two laps of any table made an insert into a full
    /// map whose every entry readers used within each lap (a flow table whose flows all get
    /// packets) cost two laps of the hand, every insert: 131,081 ticks and 5.2 ms at 65,536
    /// entries, 133 ms at a million, and a helper-mode writer held its section as long (found
    /// by review, 2026-12-06, twenty-sixth session). A bound of 256 *ticks* then made the
    /// forced lap, which takes entries whatever their bits, come too soon in a map that is
    /// mostly hot: the hand visits buckets in hash order, not coldest first (as Linux's
    /// bounded scan of its inactive list does), and 256 ticks of a 99 %-hot map often pass
    /// no unused entry, so 4–8 % of its inserts evicted a used entry while unused ones
    /// remained (found by review, 2026-12-06, twenty-seventh session). Measured on a 99 %-hot
    /// map of 4,096 entries (`insertsIntoAMostlyHotMapEvictUnusedEntries`: 400 inserts, each
    /// after a use of every hot entry), used entries evicted with a bound of 128, 256, 512,
    /// 1,024 and 2,048 used entries: 68, 36, 9, 1 and 0 (the unused entries are few, and new
    /// ones are published used). The sweep's work stays bounded whatever the map's size. The
    /// limit of any fixed bound: in a map where fewer than about one entry in a thousand goes
    /// unused between inserts, a window of 2,048 used entries often holds no unused one, and
    /// the forced lap takes a used entry (7–8 % of the inserts into a 99.9 %-hot map of 16,384
    /// entries, in a model of the sweep; map-types.md says so).
    package static var plainSweepUsedEntries: Int { 2_048 }

    /// How a lap of the sweep picks its victim: `plain` (an entry whose referenced bit was
    /// already clear: ``BucketTable/clockVictim(inChainOf:)``), `forced` (any entry of a
    /// bucket not written since the hand last passed: ``BucketTable/forcedVictim(inChainOf:sparingWritten:)``)
    /// or `last` (any entry).
    enum Sweep { case plain, forced, last }

    /// Ticks ``evictHolding(_:forUserWrite:announced:)`` sweeps before it gives up (an eviction takes
    /// two on average: a new entry is published referenced, so its bucket is cleared on one
    /// lap and yields its victim on the next).
    static let ticksUnderChainLock = 8

    /// Evicts one entry for a new key of chain `held`, whose lock the caller holds, so that
    /// the insert needs one locked pass instead of two (one to find the map full, one after
    /// the eviction): the sweep of ``evictLeastRecentlyUsed(forUserWrite:)``, except that it only *tries* the lock of every other chain — a writer that
    /// holds a chain lock must never wait for another, or two of them could wait for each
    /// other — and sweeps chain `held` under the lock it already holds. A chain whose lock
    /// is taken is passed over: its tick is spent and its entries keep their referenced bits
    /// until the hand's next lap, which only lets them live longer. Gives up after
    /// ``ticksUnderChainLock`` ticks, after which the caller releases its lock and evicts the
    /// general way (which also handles the yield); or when the map is frozen (`forUserWrite`),
    /// after which the user write fails with EPERM without sweeping or inserting.
    ///
    /// - Parameter announced: whether the evicted unit is announced in flight, to be ended
    ///   with ``CapacityGate/resolve(published:)`` (the general update's protocol). Without
    ///   (the one-pass insert, which publishes its key under the same lock), the unit stays
    ///   counted and is never in flight: it goes from the victim to the new key with no
    ///   atomic operation on the gate — nothing waits on an LRU map's units in flight, as
    ///   its inserts evict instead of answering E2BIG. Such a caller cannot fail after the
    ///   eviction: it found its slot, and allocated any bucket it needs, before evicting
    ///   (`fillEvicting`).
    /// - Returns: whether it evicted an entry, whose unit the caller now holds in flight as
    ///   its reservation (see ``evictLeastRecentlyUsed(forUserWrite:)``), or, not
    ///   `announced`, holds counted.
    ///   `leftEmpty` is an overflow bucket of chain `held` that the victim left with no live
    ///   slot: it stays in the chain, so that a slot the caller found there before evicting
    ///   is still there, and the caller unlinks it (``BucketTable/unlinkIfEmpty(_:chain:)``)
    ///   once its key is in. Inlined: called, its sweep's closure was a call too (42
    ///   instructions an evicting insert).
    @inline(__always)
    func evictHolding(_ held: Int, forUserWrite: Bool,
                      announced: Bool) -> (evicted: Bool, leftEmpty: UnsafeMutableRawPointer?) {
        guard let clock = unretainedRecency else { return (false, nil) }
        return clock._withUnsafeGuaranteedRef { recency -> (evicted: Bool, leftEmpty: UnsafeMutableRawPointer?) in
            // One hold of the claim for every tick: this sweep only tries locks.
            var claim = recency.takeClaim()
            var result: (evicted: Bool, leftEmpty: UnsafeMutableRawPointer?) = (false, nil)
            ticks: for _ in 0..<Self.ticksUnderChainLock {
                let (index, tick) = recency.advance(claim: &claim)
                let own = index == held
                if !own, table.chainLooksEmpty(index) || !table.tryLockChain(index) { continue }
                var leftEmpty: UnsafeMutableRawPointer?
                var spared = 0
                let eviction = sweepLocked(recency, chain: index, tick: tick,
                                           forUserWrite: forUserWrite, announced: announced,
                                           keepingEmptyBucket: own, sweep: .plain, leftEmpty: &leftEmpty,
                                           spared: &spared)
                if !own { table.unlockChain(index) }
                switch eviction {
                case .evicted:
                    result = (true, leftEmpty)
                    break ticks
                case .frozen: break ticks
                case .none: continue
                }
            }
            if let claim { recency.returnClaim(claim) }
            return result
        }
    }

    /// Up to two laps of the hand for a plain sweep, ending once it has passed over
    /// ``plainSweepUsedEntries`` used entries (one lap for a `forced` or `last` one): whether
    /// it evicted an entry, found none, or stopped because the map is frozen (`forUserWrite`
    /// only).
    private func evictOne(_ recency: RecencyClock, forUserWrite: Bool, sweep: Sweep) -> Eviction {
        let ticks = sweep == .plain ? 2 * recency.bucketCount : recency.bucketCount
        var spared = 0
        for _ in 0..<ticks {
            let (index, tick) = recency.advance()
            if table.chainLooksEmpty(index) {
                recency.afterEmptyTick?()
                continue
            }
            var unused: UnsafeMutableRawPointer?
            let eviction = table.withChainLock(index) {
                sweepLocked(recency, chain: index, tick: tick, forUserWrite: forUserWrite,
                            announced: true, keepingEmptyBucket: false, sweep: sweep, leftEmpty: &unused,
                            spared: &spared)
            }
            if eviction != .none { return eviction }
            recency.afterEmptyTick?()
            if sweep == .plain, spared >= Self.plainSweepUsedEntries { break }
        }
        return .none
    }

    // (A tick that found no victim in a one-bucket chain cleared its bits without the chain's
    // lock, by a compare-exchange, for about two locked instructions an evicting insert
    // fewer. Reverted: the word can come back to the value read, from a sweep of the next lap
    // and readers' marks, while a preempted sweeper holds a stale tick, and its clear then
    // wiped marks that a locked sweep, which checks freshness under the lock, would have
    // kept. Found by review, 2026-12-05.)

    /// One tick of a sweep, with chain `index` locked by the caller: nothing once the map is
    /// frozen (`forUserWrite`) or if the tick went stale; else clears the chain's referenced
    /// bits and evicts its victim, if any, keeping the freed unit as the caller's
    /// reservation (in flight if `announced`; see ``evictHolding(_:forUserWrite:announced:)``).
    /// `keepingEmptyBucket` as in ``BucketTable/retire(_:chain:keepingEmptyBucket:)``; a
    /// bucket kept empty goes to `leftEmpty`. `sweep`: how the victim is chosen (``Sweep``).
    /// A plain sweep adds the used entries it passed over to `spared`.
    @inline(__always)
    private func sweepLocked(_ recency: RecencyClock, chain index: Int, tick: Int,
                             forUserWrite: Bool, announced: Bool, keepingEmptyBucket: Bool, sweep: Sweep,
                             leftEmpty: inout UnsafeMutableRawPointer?, spared: inout Int) -> Eviction {
        if forUserWrite, freezeState.isFrozen { return .frozen }
        // Freshness first: a stale tick sweeps nothing (the sweeps clear bits).
        guard recency.isFresh(tick) else { return .none }
        let victim = switch sweep {
        case .plain: table.clockVictim(inChainOf: index, spared: &spared)
        case .forced: table.forcedVictim(inChainOf: index)
        case .last: table.forcedVictim(inChainOf: index, sparingWritten: false)
        }
        guard let place = victim else { return .none }
        if announced { capacity.beginRemoval() }
        if table.retire(place, chain: index, keepingEmptyBucket: keepingEmptyBucket) { leftEmpty = place.bucketPointer }
        capacity.keepRemovedUnitAsReservation()
        return .evicted
    }
}
