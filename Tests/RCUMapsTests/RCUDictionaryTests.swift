import CRCUMapsShim
import RCUMaps
import RCUMapsTestSupport
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Counts the lives of the objects of one test (tests run in parallel: each has its own).
final class Census: Sendable {
    let alive = Atomic<Int>(0)
    let created = Atomic<Int>(0)
    let deinitialized = Atomic<Int>(0)
}

/// An object that counts its lives: every instance must be deinitialized exactly once.
final class Tracked: Sendable {
    let id: Int
    let census: Census
    let payload: [Int]
    /// Set on deinit; a second deinit (a double release) trips over it.
    let dead = Atomic<Bool>(false)

    init(_ id: Int, _ census: Census) {
        self.id = id
        self.census = census
        payload = [id, id &* 2, id &* 3]
        census.alive.add(1, ordering: .relaxed)
        census.created.add(1, ordering: .relaxed)
    }

    deinit {
        precondition(!dead.exchange(true, ordering: .relaxed), "Tracked \(id) deinitialized twice")
        census.alive.subtract(1, ordering: .relaxed)
        census.deinitialized.add(1, ordering: .relaxed)
    }

    /// Reading an object after it was freed shows up here (and under ASan).
    var isIntact: Bool { payload == [id, id &* 2, id &* 3] && !dead.load(ordering: .relaxed) }
}

@Suite("RCUDictionary")
struct RCUDictionaryTests {
    @Test func dictionaryVocabulary() {
        let routes = RCUDictionary<String, Int>()
        #expect(routes.isEmpty)
        routes["a"] = 1
        routes["b"] = 2
        #expect(routes["a"] == 1 && routes["b"] == 2 && routes["c"] == nil)
        #expect(routes["c", default: 9] == 9)
        #expect(routes.updateValue(10, forKey: "a") == 1)
        #expect(routes.updateValue(3, forKey: "c") == nil)
        #expect(routes.count == 3)
        #expect(!routes.insertIfAbsent(99, forKey: "a"))
        #expect(routes.insertIfAbsent(4, forKey: "d"))
        #expect(routes.replaceValue(forKey: "a", ifCurrent: 10, with: 11))
        #expect(!routes.replaceValue(forKey: "a", ifCurrent: 10, with: 12))
        #expect(!routes.replaceValue(forKey: "zz", ifCurrent: 0, with: 1))
        routes["f"] = 7
        #expect(!routes.removeValue(forKey: "f", ifCurrent: 8))
        #expect(routes["f"] == 7)
        #expect(routes.removeValue(forKey: "f", ifCurrent: 7))
        #expect(routes["f"] == nil && !routes.removeValue(forKey: "f", ifCurrent: 7))
        #expect(routes.update(forKey: "b") { ($0 ?? 0) + 40 } == 42)
        #expect(routes.update(forKey: "e") { $0 == nil ? 5 : 6 } == 5)
        #expect(routes.update(forKey: "e") { _ in nil } == nil)
        #expect(routes["e"] == nil)
        #expect(routes.removeValue(forKey: "d") == 4)
        #expect(routes.removeValue(forKey: "d") == nil)
        routes["c"] = nil
        #expect(routes.dictionary == ["a": 11, "b": 42])
        #expect(Set(routes.keys) == ["a", "b"])
        #expect(routes.values.sorted() == [11, 42])
        var seen: [String: Int] = [:]
        for (key, value) in routes { seen[key] = value }
        #expect(seen == ["a": 11, "b": 42])
        routes.removeAll()
        #expect(routes.isEmpty && routes["a"] == nil)
        let literal: RCUDictionary = ["x": 1, "y": 2]
        #expect(literal.count == 2 && literal["y"] == 2)
    }

    /// Grows well past its initial size, and back down.
    @Test func growsAndShrinks() {
        let numbers = RCUDictionary<Int, Int>()
        for key in 0..<50_000 { numbers[key] = key &* 7 }
        #expect(numbers.count == 50_000)
        #expect((0..<50_000).allSatisfy { numbers[$0] == $0 &* 7 })
        for key in 0..<49_990 { numbers.removeValue(forKey: key) }
        #expect(numbers.count == 10)
        #expect(numbers.dictionary == Dictionary(uniqueKeysWithValues: (49_990..<50_000).map { ($0, $0 &* 7) }))
    }

    /// Many threads replace and remove the same keys (class values) while readers read them:
    /// every object's deinit runs exactly once, after a barrier none is left, and no reader
    /// ever sees a freed object. Once per slot layout: integer keys with the reference in
    /// the slot, string keys in nodes with the reference in the slot, and a two-word value
    /// (reference and integer) in nodes.
    @Test func classValuesAreReleasedExactlyOnce() {
        churnObjects(key: { $0 }, wrap: { $0 }, unwrap: { $0 })
        churnObjects(key: { "key-\($0)" }, wrap: { $0 }, unwrap: { $0 })
        churnObjects(key: { $0 }, wrap: { ($0, $0.id) }, unwrap: { $0.1 == $0.0.id ? $0.0 : nil })
    }

    private func churnObjects<Key: Hashable & Sendable, Value: Sendable>(
        key makeKey: @escaping @Sendable (Int) -> Key, wrap: @escaping @Sendable (Tracked) -> Value,
        unwrap: @escaping @Sendable (Value) -> Tracked?
    ) {
        let census = Census()
        let torn = Atomic<Int>(0)
        do {
            let objects = RCUDictionary<Key, Value>()
            let keys = 32
            let rounds = 5_000
            runOnThreads(4) { thread in
                var seed = UInt64(thread + 1) &* 0x9E37_79B9_7F4A_7C15
                for round in 0..<rounds {
                    seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17
                    let key = makeKey(Int(seed % UInt64(keys)))
                    switch (seed >> 32) % 6 {
                    case 0: objects[key] = wrap(Tracked(round, census))
                    case 1: _ = objects.updateValue(wrap(Tracked(round, census)), forKey: key)
                    case 2: _ = objects.removeValue(forKey: key)
                    case 3: _ = objects.insertIfAbsent(wrap(Tracked(round, census)), forKey: key)
                    case 4: objects.update(forKey: key) { old in old == nil ? wrap(Tracked(round, census)) : nil }
                    default:
                        if round & 1 == 0 {
                            if let value = objects[key], unwrap(value)?.isIntact != true { torn.add(1, ordering: .relaxed) }
                        } else if objects.withValue(forKey: key, { unwrap($0)?.isIntact }) == .some(false) {
                            // Borrowed, not retained: the object must still be whole.
                            torn.add(1, ordering: .relaxed)
                        }
                    }
                }
            }
            for (_, value) in objects where unwrap(value)?.isIntact != true { torn.add(1, ordering: .relaxed) }
        }
        // The dictionary is gone: its entries are retired; a barrier runs their release.
        Epoch.barrier()
        Epoch.barrier()
        #expect(torn.load(ordering: .relaxed) == 0, "\(Key.self) → \(Value.self)")
        #expect(census.alive.load(ordering: .relaxed) == 0, "\(Key.self) → \(Value.self)")
        let made = census.created.load(ordering: .relaxed)
        #expect(census.deinitialized.load(ordering: .relaxed) == made, "\(Key.self) → \(Value.self)")
        #expect(made > 0)
    }

    /// Integer keys live in the slots themselves, where a slot emptied by one key is reused
    /// by another: readers racing removals and reinsertions of neighbouring keys never get
    /// another key's value, and the extremes of each key type (0, negative, the largest)
    /// are keys like any other.
    // The idle-flush tests below run in exit tests (processes of their own): any
    // `Epoch.barrier()` of another test running in parallel flushes every retire list, and
    // would release the values these tests wait for even if the idle flush did not.

    /// A removed or replaced value is released after a grace period even when no other write
    /// follows and no one calls `Epoch.barrier()`: it waited in its stripe's retire buffer
    /// until 63 more retirements filled the batch (found by review, 2026-12-05, sixteenth
    /// session). Class values kept in slots (`Tracked`) and values kept in nodes
    /// (`Tracked?`) go through different retire lists; both are checked.
    @Test func removedValuesAreReleasedWithoutABarrier() async {
        await #expect(processExitsWith: .success) {
            let census = Census()
            let objects = RCUDictionary<Int, Tracked>()
            let boxed = RCUDictionary<Int, Tracked?>()
            objects[1] = Tracked(1, census)
            objects[2] = Tracked(2, census)
            boxed[1] = Tracked(3, census)
            boxed[2] = Tracked(4, census)
            objects.removeValue(forKey: 1)
            objects[2] = Tracked(5, census)    // replaces 2
            boxed.removeValue(forKey: 1)
            boxed[2] = Tracked(6, census)      // replaces 4
            let released = idleFlushTestEventually { census.alive.load(ordering: .relaxed) == 2 }
            withExtendedLifetime((objects, boxed)) {}
            exit(released ? 0 : 1)
        }
    }

    /// The idle flush's work item cannot be allocated for one removal: the next removal on
    /// the same thread (the same stripe, no longer empty) still queues one, and both values
    /// go (only a retirement into an empty stripe queued one at first, so this stripe never
    /// saw another; found by review, 2026-12-05, sixteenth session).
    @Test func aFailedIdleFlushDoesNotStopTheNext() async {
        await #expect(processExitsWith: .success) {
            let census = Census()
            let objects = RCUDictionary<Int, Tracked>()
            objects[1] = Tracked(1, census)
            objects[2] = Tracked(2, census)
            await Epoch.barrier()  // nothing of the dictionary's pending
            // Integer keys, class values in their slots: the removal's first epoch
            // allocation is the idle flush's work item.
            let (_, injected) = _FaultInjection.failingOneAllocation(after: 0) { objects.removeValue(forKey: 1) }
            guard injected else { exit(2) }
            objects.removeValue(forKey: 2)
            let released = idleFlushTestEventually { census.alive.load(ordering: .relaxed) == 0 }
            withExtendedLifetime(objects) {}
            exit(released ? 0 : 1)
        }
    }

    /// The grace-period driver's thread could not be started when the first removal's idle
    /// flush was queued (a thread limit, over by the next write): the next removal, 10 ms or
    /// more after the failed start (row 283), starts it.
    /// The pending flush's claim kept every later removal from enqueuing, and only an enqueue
    /// retried the start, so both values waited for a barrier that never came (found by
    /// review, 2026-12-06, twenty-eighth session).
    @Test func anIdleFlushQueuedWhenTheDriverCouldNotStartRunsAfterTheNextWrite() async {
        await #expect(processExitsWith: .success) {
            let census = Census()
            let objects = RCUDictionary<Int, Tracked>()
            objects[1] = Tracked(1, census)
            objects[2] = Tracked(2, census)
            // (No barrier first: it would start the driver. Nothing before this has queued a
            // driver item in this process.)
            rcumaps_gp_test_fail_driver_starts(1)
            objects.removeValue(forKey: 1)  // the idle flush claimed and queued; no driver
            rcumaps_gp_test_fail_driver_starts(0)
            usleep(20_000)  // a start is tried again 10 ms after a failure at the earliest
            objects.removeValue(forKey: 2)  // the next write
            let released = idleFlushTestEventually { census.alive.load(ordering: .relaxed) == 0 }
            withExtendedLifetime(objects) {}
            exit(released ? 0 : 1)
        }
    }

    /// While the grace-period driver's thread cannot be started, writes try to start it at
    /// most once every 10 ms: every removal that found the idle flush queued tried, a
    /// `pthread_create` under the driver's process-wide mutex each, about ten times the
    /// cost of the removal (docs/reliability.md row 283). The bound scales with the time
    /// the removals took, so a slow machine cannot fail it.
    @Test func aDriverThatCannotStartIsTriedAtMostEveryTenMilliseconds() async {
        await #expect(processExitsWith: .success) {
            let census = Census()
            let objects = RCUDictionary<Int, Tracked>()
            for key in 0..<2_000 { objects[key] = Tracked(key, census) }
            rcumaps_gp_test_fail_driver_starts(1)
            let before = rcumaps_gp_test_driver_start_attempts()
            let start = ContinuousClock.now
            for key in 0..<2_000 { objects.removeValue(forKey: key) }
            let elapsed = ContinuousClock.now - start
            let attempts = rcumaps_gp_test_driver_start_attempts() - before
            let bound = 2 + UInt64(elapsed / .milliseconds(10))
            rcumaps_gp_test_fail_driver_starts(0)
            await Epoch.barrier()  // runs the queued items here, or starts the driver
            let released = idleFlushTestEventually { census.alive.load(ordering: .relaxed) == 0 }
            withExtendedLifetime(objects) {}
            exit(attempts <= bound && released ? 0 : 1)
        }
    }

    /// A value that holds its own dictionary, removed, then the last outside reference to
    /// the dictionary dropped: the dictionary goes once the value is released, without a
    /// barrier (the pending value kept the dictionary alive until the next barrier).
    @Test func aValueHoldingItsDictionaryLetsItGo() async {
        await #expect(processExitsWith: .success) {
            final class Holder: Sendable {
                let owner: RCUDictionary<Int, Holder>
                init(_ owner: RCUDictionary<Int, Holder>) { self.owner = owner }
            }
            weak var weakDictionary: RCUDictionary<Int, Holder>?
            do {
                let dictionary = RCUDictionary<Int, Holder>()
                weakDictionary = dictionary
                dictionary[1] = Holder(dictionary)
                dictionary.removeValue(forKey: 1)
            }
            exit(idleFlushTestEventually { weakDictionary == nil } ? 0 : 1)
        }
    }

    /// A read-modify-write through the subscript is one atomic step, as under a `Mutex`:
    /// `d[k]! += 1` from several threads loses no increment (it was a read and a separate
    /// write, and lost some: found by review, 2026-12-05, sixteenth session), nor does the
    /// counting idiom `d[k, default: 0] += 1`, for every layout (integer keys with one-word
    /// values, `String` keys in nodes, values in nodes).
    @Test func subscriptReadModifyWritesAreAtomic() {
        let threads = 4, rounds = 20_000
        let counts = RCUDictionary<Int, Int>()
        counts[0] = 0
        let words = RCUDictionary<String, Int>()
        let lists = RCUDictionary<Int, [Int]>()
        runOnThreads(threads) { thread in
            for round in 0..<rounds {
                counts[0]! += 1
                counts[1 + round % 8, default: 0] += 1
                words["key \(round % 4)", default: 0] += 1
                if round % 16 == 0 { lists[round % 3, default: []].append(thread) }
            }
        }
        #expect(counts[0] == threads * rounds)
        #expect((1...8).map { counts[$0] ?? 0 }.reduce(0, +) == threads * rounds)
        #expect((0..<4).map { words["key \($0)"] ?? 0 } == [Int](repeating: threads * rounds / 4, count: 4))
        #expect((0..<3).map { lists[$0]?.count ?? 0 }.reduce(0, +) == threads * ((rounds + 15) / 16))
        // An absent key: optional chaining changes nothing and stores nothing.
        lists[99]?.append(1)
        #expect(lists[99] == nil && !lists.contains(99))
        // A value set to nil in place removes the key.
        func clear(_ value: inout [Int]?) { value = nil }
        clear(&lists[0])
        #expect(!lists.contains(0))
    }

    /// Two overlapping accesses to one dictionary through its subscript (`swap(&d[a],
    /// &d[b])`) stop the program with a message: the second would wait for a stripe the
    /// thread holds (when the keys share one), or, through a resize, for every stripe
    /// (found by review, 2026-12-05, sixteenth session). Of two dictionaries, they work.
    @Test func overlappingSubscriptAccessesStopWithAMessage() async {
        await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            alarm(30)  // a hang (the overlap missed) ends without the message
            let first = RCUDictionary<Int, Int>(), second = RCUDictionary<Int, Int>()
            first[1] = 10
            second[2] = 20
            swap(&first[1], &second[2])
            guard first[1] == 20, second[2] == 10 else { exit(0) }  // (not the failure expected)
            // With another dictionary's access between the two (the record names only the
            // innermost: this hung, found by review, 2026-12-05).
            func three(_ x: inout Int?, _ y: inout Int?, _ z: inout Int?) {}
            three(&first[1], &second[2], &first[1])
        }.map { result in
            #expect(String(decoding: result.standardErrorContent, as: UTF8.self).contains("overlapping accesses to one dictionary"))
        }
    }

    /// `reserveCapacity` and `removeAll` inside a subscript access of the same dictionary
    /// stop with the overlapping-access message: they take every stripe, the access's one
    /// included (a growing `reserveCapacity` hung there: found by review, 2026-12-05,
    /// eighteenth session).
    @Test func reserveCapacityInsideASubscriptAccessStopsWithAMessage() async {
        await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            Self.takeEveryStripeInsideAnAccess { $0.reserveCapacity(1 << 16) }
        }.map(Self.expectOverlapMessage)
    }

    @Test func removeAllInsideASubscriptAccessStopsWithAMessage() async {
        await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            Self.takeEveryStripeInsideAnAccess { $0.removeAll() }
        }.map(Self.expectOverlapMessage)
    }

    /// Any other write to the dictionary inside its subscript access stops with the same
    /// message: one to the access's own stripe waited for it, and one that grew the array
    /// waited for every stripe — both hung without a message (found by review, 2026-12-06,
    /// thirtieth session).
    @Test func aWriteInsideASubscriptAccessStopsWithAMessage() async {
        await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            Self.takeEveryStripeInsideAnAccess { $0[1] = 5 }
        }.map(Self.expectOverlapMessage)
        await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            Self.takeEveryStripeInsideAnAccess { dictionary in for key in 2..<2_000 { dictionary[key] = key } }
        }.map(Self.expectOverlapMessage)
    }

    /// A dictionary literal's size is no floor: emptied, it shrinks as one filled key by key
    /// (it kept the literal's array for good: found by review, 2026-12-06, thirtieth session).
    /// (An 80-entry literal sizes its array at 64 buckets: on a machine of 9 or more CPUs the
    /// stripes make that the least array, and there is nothing to shrink.)
    @Test(.enabled(if: RCUDictionary<Int, Int>().bucketCountNow < 64, "this machine's least array is the literal's"))
    func aLiteralsDictionaryShrinksOnceEmptied() {
        let smallest = RCUDictionary<Int, Int>().bucketCountNow
        let literal: RCUDictionary<Int, Int> = [0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 7, 8: 8, 9: 9, 10: 10, 11: 11,
                                               12: 12, 13: 13, 14: 14, 15: 15, 16: 16, 17: 17, 18: 18, 19: 19, 20: 20,
                                               21: 21, 22: 22, 23: 23, 24: 24, 25: 25, 26: 26, 27: 27, 28: 28, 29: 29,
                                               30: 30, 31: 31, 32: 32, 33: 33, 34: 34, 35: 35, 36: 36, 37: 37, 38: 38,
                                               39: 39, 40: 40, 41: 41, 42: 42, 43: 43, 44: 44, 45: 45, 46: 46, 47: 47,
                                               48: 48, 49: 49, 50: 50, 51: 51, 52: 52, 53: 53, 54: 54, 55: 55, 56: 56,
                                               57: 57, 58: 58, 59: 59, 60: 60, 61: 61, 62: 62, 63: 63, 64: 64, 65: 65,
                                               66: 66, 67: 67, 68: 68, 69: 69, 70: 70, 71: 71, 72: 72, 73: 73, 74: 74,
                                               75: 75, 76: 76, 77: 77, 78: 78, 79: 79]
        #expect(literal.count == 80)
        let full = literal.bucketCountNow
        for key in 0..<80 { literal.removeValue(forKey: key) }
        for round in 0..<400 {
            literal[1_000 + round] = round
            literal.removeValue(forKey: 1_000 + round)
        }
        #expect(literal.bucketCountNow == smallest, "\(literal.bucketCountNow) buckets (\(full) full, \(smallest) the least)")
        #expect(full > smallest)
    }

    /// In an exit test: calls `body` on a dictionary from inside a subscript access of it,
    /// which must stop the process (a hang ends by the 30 s alarm, without the message).
    static func takeEveryStripeInsideAnAccess(_ body: (RCUDictionary<Int, Int>) -> Void) {
        alarm(30)
        let dictionary = RCUDictionary<Int, Int>()
        dictionary[1] = 10
        func inside(_ value: inout Int?) { body(dictionary) }
        inside(&dictionary[1])
        exit(0)  // (not the failure expected)
    }

    static func expectOverlapMessage(_ result: ExitTest.Result) {
        #expect(String(decoding: result.standardErrorContent, as: UTF8.self).contains("overlapping accesses to one dictionary"))
    }

    /// Objects replaced through the subscript's `_modify` are released exactly once.
    @Test func objectsReplacedInAModifyAreReleasedOnce() {
        let census = Census()
        do {
            let objects = RCUDictionary<Int, Tracked>()
            objects[1] = Tracked(1, census)
            runOnThreads(4) { thread in
                for round in 0..<500 {
                    var fresh: Tracked? = Tracked(thread * 1_000 + round, census)
                    swap(&objects[1], &fresh)
                    #expect(fresh?.isIntact ?? false)
                }
            }
            #expect(objects.count == 1)
        }
        Epoch.barrier()
        Epoch.barrier()
        #expect(census.alive.load(ordering: .relaxed) == 0)
        #expect(census.created.load(ordering: .relaxed) == census.deinitialized.load(ordering: .relaxed))
    }

    @Test func slotsReusedByOtherKeysNeverMixThemUp() {
        let table = RCUDictionary<Int, Int>()
        let wrong = Atomic<Int>(0)
        // A value is its key × 10^6 plus the writer's round (< 10^6): another key's value
        // is out of that key's range.
        @Sendable func belongs(_ value: Int, to key: Int) -> Bool { (0..<1_000_000).contains(value - key &* 1_000_000) }
        // Few keys, many removals: slots are emptied and refilled all the time.
        runOnThreads(4) { thread in
            var seed = UInt64(thread + 7) &* 0x9E37_79B9_7F4A_7C15
            for round in 0..<150_000 {
                seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17
                let key = Int(seed % 24) - 12  // negative keys and 0 included
                if thread < 2 {
                    if seed >> 40 & 1 == 0 { table[key] = key &* 1_000_000 + round } else { table.removeValue(forKey: key) }
                } else if let value = table[key], !belongs(value, to: key) {
                    wrong.add(1, ordering: .relaxed)
                }
            }
        }
        #expect(wrong.load(ordering: .relaxed) == 0)
        for (key, value) in table { #expect(belongs(value, to: key), "key \(key) holds \(value)") }

        let small = RCUDictionary<Int8, UInt>()
        for key in Int8.min...Int8.max { small[key] = UInt(UInt8(bitPattern: key)) + 1 }
        #expect(small.count == 256)
        #expect((Int8.min...Int8.max).allSatisfy { small[$0] == UInt(UInt8(bitPattern: $0)) + 1 })
        #expect(small.removeValue(forKey: 0) == 1 && small[0] == nil && small[-1] == 256)
        let wide = RCUDictionary<UInt64, Int>()
        wide[.max] = 1
        wide[0] = 2
        #expect(wide[.max] == 1 && wide[0] == 2 && wide[1] == nil && wide.count == 2)
    }

    /// A reader that took a value keeps it alive however long it holds it, even after the
    /// entry was removed and reclaimed.
    @Test func aValueReadOutlivesItsEntry() {
        let objects = RCUDictionary<String, Tracked>()
        objects["k"] = Tracked(7, Census())
        let held = objects["k"]
        objects.removeValue(forKey: "k")
        Epoch.barrier()
        #expect(held?.isIntact == true && held?.id == 7)
    }

    /// Reads from Swift concurrency tasks (lock-free, no registration needed).
    @Test func readsFromTasks() async {
        let table = RCUDictionary<Int, String>()
        for key in 0..<100 { table[key] = "v\(key)" }
        let found = await withTaskGroup(of: Int.self) { group in
            for task in 0..<8 {
                group.addTask {
                    var hits = 0
                    for key in 0..<100 where table[(key + task) % 100] == "v\((key + task) % 100)" { hits += 1 }
                    return hits
                }
            }
            return await group.reduce(0, +)
        }
        #expect(found == 800)
    }

    /// Concurrent counting through update(forKey:): no increment is lost (the transform
    /// retries when another writer got there first).
    @Test func updateRetriesUntilItWins() {
        let counts = RCUDictionary<String, Int>()
        runOnThreads(4) { _ in
            for _ in 0..<2_000 { counts.update(forKey: "hits") { ($0 ?? 0) + 1 } }
        }
        #expect(counts["hits"] == 8_000)
    }

    /// One-word values are replaced in place: every value written is displaced exactly once
    /// (by `updateValue`, which returns it) or is the one left at the end, and increments by
    /// compare-and-replace and by `update(forKey:)` racing in-place replacements lose nothing.
    @Test func inPlaceReplacementsDisplaceEachValueOnce() {
        let table = RCUDictionary<String, Int>()
        let displaced = ThreadLock<[Int]>([])
        table["k"] = -1
        runOnThreads(4) { thread in
            var mine: [Int] = []
            for round in 0..<3_000 {
                if let old = table.updateValue(thread * 1_000_000 + round, forKey: "k") { mine.append(old) }
            }
            displaced.withLock { $0.append(contentsOf: mine) }
        }
        var seen = displaced.withLock { $0 }
        seen.append(table["k"]!)
        let written = [-1] + (0..<4).flatMap { thread in (0..<3_000).map { thread * 1_000_000 + $0 } }
        #expect(seen.sorted() == written.sorted())

        table["n"] = 0
        runOnThreads(4) { thread in
            for _ in 0..<2_000 {
                if thread % 2 == 0 {
                    table.update(forKey: "n") { ($0 ?? 0) + 1 }
                } else {
                    while true {
                        let current = table["n"]!
                        if table.replaceValue(forKey: "n", ifCurrent: current, with: current + 1) { break }
                    }
                }
            }
        }
        #expect(table["n"] == 8_000)
    }

    /// Compare-and-remove racing replacements, insertions and other compare-and-removes of
    /// the same keys, on the three layouts (an integer key and a one-word value in the slot;
    /// a `String` key in a node; a two-word value in a node): every value written leaves the
    /// dictionary at most once (by the one successful removal, or displaced by a replace) and
    /// the ones that never left are exactly those still stored.
    @Test func compareAndRemoveTakesEachValueOnce() {
        compareAndRemove(key: { $0 }, value: { $0 }, token: { $0 })
        compareAndRemove(key: { "key-\($0)" }, value: { $0 }, token: { $0 })
        compareAndRemove(key: { $0 }, value: { TwoWords(token: $0, check: ~$0) }, token: { $0.check == ~$0.token ? $0.token : -1 })
    }

    struct TwoWords: Equatable, Sendable { var token: Int; var check: Int }

    private func compareAndRemove<Key: Hashable & Sendable, Value: Equatable & Sendable>(
        key makeKey: @escaping @Sendable (Int) -> Key, value makeValue: @escaping @Sendable (Int) -> Value,
        token: @escaping @Sendable (Value) -> Int
    ) {
        let table = RCUDictionary<Key, Value>()
        let keys = 8
        for index in 0..<keys { table[makeKey(index)] = makeValue(-1 - index) }
        let written = ThreadLock<[Int]>((0..<keys).map { -1 - $0 })
        let left = ThreadLock<[Int]>([])
        runOnThreads(4) { thread in
            var mine: (written: [Int], left: [Int]) = ([], [])
            var seed = UInt64(thread + 1) &* 0x9E37_79B9_7F4A_7C15
            for round in 0..<3_000 {
                seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17
                let key = makeKey(Int(seed % UInt64(keys)))
                let fresh = (thread + 1) * 1_000_000 + round
                switch (seed >> 32) % 4 {
                case 0, 1:
                    // Read, then take exactly what was read, if it is still there.
                    if let seen = table[key], table.removeValue(forKey: key, ifCurrent: seen) {
                        mine.left.append(token(seen))
                    }
                case 2:
                    if table.insertIfAbsent(makeValue(fresh), forKey: key) { mine.written.append(fresh) }
                default:
                    mine.written.append(fresh)
                    if let old = table.updateValue(makeValue(fresh), forKey: key) { mine.left.append(token(old)) }
                }
            }
            written.withLock { $0.append(contentsOf: mine.written) }
            left.withLock { $0.append(contentsOf: mine.left) }
        }
        let remaining = table.values.map(token)
        let out = left.withLock { $0 } + remaining
        let all = written.withLock { $0 }
        // (Counts and a few tokens, not the arrays: thousands of entries make an unreadable failure.)
        #expect(out.count == all.count, "\(Key.self) → \(Value.self): \(all.count) written, \(out.count) left or stored")
        let twice = Dictionary(grouping: out, by: { $0 }).filter { $0.value.count > 1 }.keys
        let noneTwice = twice.isEmpty
        #expect(noneTwice, "\(Key.self) → \(Value.self): \(twice.count) values left twice, e.g. \(twice.prefix(3))")
        let unexplained = Set(out).symmetricDifference(all)
        let noneUnexplained = unexplained.isEmpty
        #expect(noneUnexplained, "\(Key.self) → \(Value.self): \(unexplained.count) values lost or invented, e.g. \(unexplained.prefix(3))")
        let removals = left.withLock { $0 }.count
        #expect(removals > 1_000, "\(Key.self) → \(Value.self): too few removals to show anything")
    }

    /// Objects replaced in place by compare-and-replace and `update(forKey:)` are released
    /// exactly once, after readers are done with them.
    @Test func objectsReplacedInPlaceAreReleasedOnce() {
        let census = Census()
        do {
            let table = RCUDictionary<Int, Tracked>()
            for key in 0..<8 { table[key] = Tracked(key, census) }
            runOnThreads(4) { thread in
                for round in 0..<3_000 {
                    let key = (thread + round) % 8
                    if round % 3 == 0 {
                        table.update(forKey: key) { _ in Tracked(round, census) }
                    } else if round % 3 == 1 {
                        _ = table.updateValue(Tracked(round, census), forKey: key)
                    } else if let object = table[key] {
                        #expect(object.isIntact)
                    }
                }
            }
            #expect(table.count == 8)
        }
        Epoch.barrier()
        Epoch.barrier()
        #expect(census.alive.load(ordering: .relaxed) == 0)
        #expect(census.deinitialized.load(ordering: .relaxed) == census.created.load(ordering: .relaxed))
    }

    /// `withValue(forKey:)` lends the stored value to its body, in every slot layout: one-word
    /// values in the slot (integers, references) with integer or node keys, and values in
    /// nodes; a missing key runs nothing and gives `nil`; errors thrown by the body come out
    /// typed.
    @Test func withValueLendsTheStoredValue() throws {
        let census = Census()
        do {
            let counters = RCUDictionary<Int, Int>()
            counters[7] = 70
            #expect(counters.withValue(forKey: 7) { $0 + 1 } == 71)
            #expect(counters.withValue(forKey: 8) { _ in Issue.record("ran for a missing key") } == nil)
            let objects = RCUDictionary<Int, Tracked>()
            objects[1] = Tracked(1, census)
            #expect(objects.withValue(forKey: 1) { $0.isIntact ? $0.id : -1 } == 1)
            let named = RCUDictionary<String, Tracked>()
            named["one"] = Tracked(11, census)
            #expect(named.withValue(forKey: "one") { $0.payload } == [11, 22, 33])
            let lists = RCUDictionary<String, [Int]>()
            lists["l"] = [1, 2, 3]
            #expect(lists.withValue(forKey: "l") { $0.reduce(0, +) } == 6)
            #expect(lists.withValue(forKey: "m") { $0.count } == nil)
            // The body may keep a copy beyond the call (a retain of its own).
            let kept = objects.withValue(forKey: 1) { copy $0 }
            objects[1] = nil
            Epoch.barrier()
            #expect(kept?.isIntact == true && census.alive.load(ordering: .relaxed) == 2)
            struct Refused: Error, Equatable {}
            #expect(throws: Refused.self) { try counters.withValue(forKey: 7) { (_) throws(Refused) in throw Refused() } }
        }
        Epoch.barrier()
        Epoch.barrier()
        #expect(census.alive.load(ordering: .relaxed) == 0)
        #expect(census.deinitialized.load(ordering: .relaxed) == census.created.load(ordering: .relaxed))
    }

    /// `String` keys are found by their UTF-8 bytes when the node keeps them, and by `==`
    /// otherwise: canonically equivalent spellings (different bytes, one string) find one
    /// entry, keys too long for the node's bytes still match, and a key that is a prefix of
    /// another is another key. Once with values in the slot and once with values in nodes.
    @Test func stringKeysMatchByBytesAndByEquivalence() {
        let precomposed = "caf\u{E9}"            // é as one scalar
        let decomposed = "cafe\u{301}"           // e + combining acute accent
        let kelvin = "\u{212A}"                  // KELVIN SIGN, canonically "K"
        let long = String(repeating: "abcdefghij", count: 12)  // 120 bytes: beyond a node's copy
        #expect(precomposed == decomposed && Array(precomposed.utf8) != Array(decomposed.utf8))
        func check<Value: Equatable & Sendable>(_ make: (Int) -> Value) {
            let table = RCUDictionary<String, Value>()
            table[precomposed] = make(1)
            #expect(table[decomposed] == make(1))
            table[decomposed] = make(2)
            #expect(table.count == 1 && table[precomposed] == make(2))
            table["K"] = make(3)
            #expect(table[kelvin] == make(3))
            #expect(!table.insertIfAbsent(make(4), forKey: kelvin))
            table[long] = make(5)
            #expect(table[String(repeating: "abcdefghij", count: 12)] == make(5))
            #expect(table[String(long.dropLast())] == nil && table[long + "k"] == nil)
            table[""] = make(6)
            #expect(table[""] == make(6) && table["c"] == nil && table["caf"] == nil)
            #expect(table.removeValue(forKey: decomposed) == make(2) && table[precomposed] == nil)
            #expect(Set(table.keys) == ["K", long, ""])
        }
        check { $0 }                          // Int: values in the slot, keys in nodes
        check { [$0, $0 &+ 1] }               // [Int]: keys and values in nodes
    }

    /// Runs `map.removeAll()` on one thread while `other` runs on another, started first;
    /// `other` gets whether the removal has returned.
    static func removeAll<Key, Value>(from map: RCUDictionary<Key, Value>,
                                      while other: @escaping @Sendable (_ isDone: () -> Bool) -> Void) {
        let started = Atomic<Bool>(false)
        let done = Atomic<Bool>(false)
        runOnThreads(2) { thread in
            if thread == 0 {
                while !started.load(ordering: .acquiring) { sched_yield() }
                map.removeAll()
                done.store(true, ordering: .releasing)
            } else {
                started.store(true, ordering: .releasing)
                other { done.load(ordering: .acquiring) }
            }
        }
    }

    /// `removeAll()` while another thread looks keys up: no lookup ever sees an object whose
    /// `deinit` has run. It released entries while their table was still published, and a
    /// retire-list batch submitted midway could be reclaimed under a reader that found its
    /// entry afterwards (found by review: 51,873 of 837,769 lookups saw a dead object).
    @Test func removeAllReleasesNothingAReaderCanStillFind() {
        let census = Census()
        let deadSeen = Atomic<Int>(0)
        let lookups = Atomic<Int>(0)
        for round in 0..<4 {
            let map = RCUDictionary<Int, Tracked>()
            let keys = 100_000
            for key in 0..<keys { map[key] = Tracked(key, census) }
            Self.removeAll(from: map) { isDone in
                var random = XorShift(seed: UInt64(round + 1))
                while !isDone() {
                    lookups.add(1, ordering: .relaxed)
                    // Borrowed, not retained: only the flag its deinit sets is read.
                    if map.withValue(forKey: Int(random.next() % UInt64(keys)), { $0.dead.load(ordering: .relaxed) }) == true {
                        deadSeen.add(1, ordering: .relaxed)
                    }
                }
            }
            #expect(map.isEmpty)
        }
        #expect(lookups.load(ordering: .relaxed) > 0)
        #expect(deadSeen.load(ordering: .relaxed) == 0)
        Epoch.barrier()
        Epoch.barrier()
        #expect(census.alive.load(ordering: .relaxed) == 0)
        #expect(census.deinitialized.load(ordering: .relaxed) == census.created.load(ordering: .relaxed))
    }

    /// Writers running while `removeAll()` retires the old table's entries (it holds the
    /// stripes only to publish the empty table, since 2026-12-05): what they write goes
    /// into the new table and stays, nothing is released twice or leaked, and every value
    /// is its own key's.
    @Test func writersDuringRemoveAllLoseAndLeakNothing() {
        let census = Census()
        for _ in 0..<3 {
            let map = RCUDictionary<Int, Tracked>()
            for key in 0..<50_000 { map[key] = Tracked(key, census) }
            Self.removeAll(from: map) { isDone in
                var key = 0
                while !isDone() {
                    map[key] = Tracked(key, census)
                    key = (key + 7) % 1_000
                }
                // After the removal: these must all stay.
                for key in 1_000..<1_100 { map[key] = Tracked(key, census) }
            }
            let entries = map.snapshot()
            #expect(entries.allSatisfy { $0.key == $0.value.id && !$0.value.dead.load(ordering: .relaxed) })
            #expect(entries.count == map.count)
            #expect((1_000..<1_100).allSatisfy { map[$0]?.id == $0 })
        }
        Epoch.barrier()
        Epoch.barrier()
        #expect(census.alive.load(ordering: .relaxed) == 0)
        #expect(census.deinitialized.load(ordering: .relaxed) == census.created.load(ordering: .relaxed))
    }
}

/// Whether `condition` holds within 10 s, looked at every millisecond (no barrier): for
/// the idle-flush exit tests of ``RCUDictionaryTests``.
func idleFlushTestEventually(_ condition: () -> Bool) -> Bool {
    let deadline = ContinuousClock.now + .seconds(10)
    while !condition() {
        if ContinuousClock.now > deadline { return false }
        usleep(1_000)
    }
    return true
}
