import RCUMaps
import RCUEpoch
import Foundation
import Synchronization

/// Runs `body(threadIndex)` on `count` new threads that start together, and joins them all.
///
/// Plain pthreads, joined: when this returns, every thread has exited and released `body`
/// (and whatever it captured).
public func runOnThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let ready = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: 1)
    ready.initialize(to: Atomic(0))
    defer { ready.deinitialize(count: 1); ready.deallocate() }
    var threads: [pthread_t] = []
    for index in 0..<count {
        final class Box: @unchecked Sendable {
            let ready: UnsafeMutablePointer<Atomic<Int>>
            let index: Int, count: Int
            let body: @Sendable (Int) -> Void
            init(_ ready: UnsafeMutablePointer<Atomic<Int>>, _ index: Int, _ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
                self.ready = ready; self.index = index; self.count = count; self.body = body
            }
        }
        let box = Unmanaged.passRetained(Box(ready, index, count, body)).toOpaque()
        var thread = pthread_t()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        pthread_attr_setstacksize(&attributes, 1 << 20)
        let result = pthread_create(&thread, &attributes, { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            box.ready.pointee.wrappingAdd(1, ordering: .acquiringAndReleasing)
            while box.ready.pointee.load(ordering: .acquiring) < box.count { sched_yield() }
            box.body(box.index)
            return nil
        }, box)
        pthread_attr_destroy(&attributes)
        precondition(result == 0, "pthread_create failed: \(result)")
        threads.append(thread)
    }
    for thread in threads { pthread_join(thread, nil) }
}

/// A thread of its own that holds an epoch section from `init` (which returns once it is
/// inside) until ``release()`` (which returns once the thread has left it): no grace period
/// ends meanwhile, in the whole process.
public final class SectionHolder: Sendable {
    private let inside = Atomic<Bool>(false)
    private let released = Atomic<Bool>(false)
    private let finished = Atomic<Bool>(false)

    public init() {
        let thread = Thread { [self] in
            Epoch.withSection { _ in
                inside.store(true, ordering: .releasing)
                while !released.load(ordering: .acquiring) { usleep(500) }
            }
            finished.store(true, ordering: .releasing)
        }
        thread.start()
        while !inside.load(ordering: .acquiring) { usleep(100) }
    }

    public func release() {
        released.store(true, ordering: .releasing)
        while !finished.load(ordering: .acquiring) { usleep(500) }
    }
}

/// How long concurrency tests run: `RCUMAPS_LONG_TESTS=seconds` scales them up.
public var stressDuration: Duration {
    if let text = ProcessInfo.processInfo.environment["RCUMAPS_LONG_TESTS"], let seconds = Double(text) {
        return .milliseconds(Int(seconds * 1000))
    }
    return .milliseconds(400)
}

/// A per-thread xorshift generator (cheap, deterministic from its seed).
public struct XorShift: RandomNumberGenerator, Sendable {
    var state: UInt64
    public init(seed: UInt64) { state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed }
    public mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
}

/// A thread-safe list of failure messages collected from worker threads.
public final class Failures: Sendable {
    private let messages = ThreadLock<[String]>([])
    public init() {}
    public func record(_ message: String) {
        messages.withLock { if $0.count < 20 { $0.append(message) } }
    }
    public var all: [String] { messages.withLock { $0 } }
}

/// A deadline that worker loops poll.
public struct Deadline: Sendable {
    let end: ContinuousClock.Instant
    public init(after duration: Duration) { end = .now + duration }
    public var hasPassed: Bool { ContinuousClock.now >= end }
}

/// A grace period (`Epoch.synchronize()`) started on a thread of its own, for tests that
/// check whether it waits for something the test holds: ask ``ends(within:)`` while it
/// holds it, release it, then ``waitUntilEnded()``.
public final class GracePeriodProbe: Sendable {
    private let ended = Atomic<Bool>(false)

    /// Starts the grace period.
    public init() {
        Thread { [self] in
            Epoch.synchronize()
            ended.store(true, ordering: .releasing)
        }.start()
    }

    /// Whether the grace period ended within `seconds`.
    public func ends(within seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while !ended.load(ordering: .acquiring), Date() < deadline { usleep(1_000) }
        return ended.load(ordering: .acquiring)
    }

    /// Waits until the grace period has ended.
    public func waitUntilEnded() {
        while !ended.load(ordering: .acquiring) { usleep(1_000) }
    }
}

/// Whether in-place increments survive whole-value exchanges: thread 0 adds 1 `adds` times
/// to the counter `counter` returns (runs of 1,000 inside one section, through one borrowed
/// pointer, to land many of them in an exchange's window), while thread 1 exchanges a value
/// of `valueBytes` zeros in, in a tight loop (`exchange(zeros, displaced)`, buffers made
/// once: an allocation per exchange made them too rare to meet an add), and sums the first
/// 8 bytes of what it took out, until the adds are done. With no increment lost the sum
/// equals `adds` (the last exchange, after the last add, takes the rest out).
///
/// The race must happen for the sum to mean anything: if fewer than two exchanges took out
/// a non-zero value while the adds ran (the exchanger descheduled until they were done), the
/// run is made again, up to five times (before, such a run passed without a race: found by
/// review, 2026-12-05, eighteenth session).
public func harvestIncrements(adds: Int, valueBytes: Int,
                              counter: @escaping @Sendable (borrowing EpochSection) -> UnsafeMutablePointer<Atomic<UInt64>>,
                              exchange: @escaping @Sendable (UnsafeRawBufferPointer, UnsafeMutableRawBufferPointer) -> Void)
    -> Harvest {
    var harvest = Harvest(total: 0, harvestsDuringAdds: 0)
    for _ in 0..<5 {
        harvest = harvestIncrementsOnce(adds: adds, valueBytes: valueBytes, counter: counter, exchange: exchange)
        if harvest.raced { break }
    }
    return harvest
}

/// What ``harvestIncrements(adds:valueBytes:counter:exchange:)`` found.
public struct Harvest: Sendable {
    /// The sum of what the exchanges took out: `adds` when no increment was lost.
    public let total: UInt64
    /// Exchanges that took out a non-zero value while the adds were still running.
    public let harvestsDuringAdds: Int
    /// Whether the exchanges met the adds (at least two harvests while they ran).
    public var raced: Bool { harvestsDuringAdds >= 2 }
}

func harvestIncrementsOnce(adds: Int, valueBytes: Int,
                           counter: @escaping @Sendable (borrowing EpochSection) -> UnsafeMutablePointer<Atomic<UInt64>>,
                           exchange: @escaping @Sendable (UnsafeRawBufferPointer, UnsafeMutableRawBufferPointer) -> Void)
    -> Harvest {
    let addsDone = Atomic<Bool>(false)
    let harvested = Atomic<UInt64>(0)
    let during = Atomic<Int>(0)
    runOnThreads(2) { thread in
        if thread == 0 {
            for _ in 0..<(adds / 1_000) {
                Epoch.withSection { section in
                    let word = counter(section)
                    for _ in 0..<1_000 { word.pointee.wrappingAdd(1, ordering: .relaxed) }
                }
            }
            addsDone.store(true, ordering: .releasing)
        } else {
            let zeros = UnsafeMutableRawBufferPointer.allocate(byteCount: valueBytes, alignment: 8)
            let displaced = UnsafeMutableRawBufferPointer.allocate(byteCount: valueBytes, alignment: 8)
            defer { zeros.deallocate(); displaced.deallocate() }
            zeros.initializeMemory(as: UInt8.self, repeating: 0)
            displaced.initializeMemory(as: UInt8.self, repeating: 0)
            var total: UInt64 = 0
            var last = false
            var harvests = 0
            while !last {
                last = addsDone.load(ordering: .acquiring)
                exchange(UnsafeRawBufferPointer(zeros), displaced)
                let taken = displaced.loadUnaligned(as: UInt64.self)
                total &+= taken
                if !last, taken != 0 { harvests += 1 }
            }
            harvested.store(total, ordering: .releasing)
            during.store(harvests, ordering: .releasing)
        }
    }
    return Harvest(total: harvested.load(ordering: .acquiring), harvestsDuringAdds: during.load(ordering: .acquiring))
}

/// ``harvestIncrements(adds:valueBytes:counter:exchange:)`` on index 0 of `map`, an array
/// (or a custom map on one) with 4-byte keys: the adds land through `lookupInPlace`, the
/// exchanges swap zeros in through `exchange`.
public func harvestIncrementsAtIndexZero(of map: some RawMap, adds: Int, valueBytes: Int) -> Harvest {
    harvestIncrements(adds: adds, valueBytes: valueBytes, counter: { section in
        let value = withUnsafeBytes(of: UInt32(0)) { try? map.lookupInPlace(key: $0, in: section) }
        return value!.baseAddress!.assumingMemoryBound(to: Atomic<UInt64>.self)
    }, exchange: { zeros, displaced in
        _ = try? withUnsafeBytes(of: UInt32(0)) { try map.exchange(key: $0, value: zeros, flags: .any, into: displaced) }
    })
}

/// A watchdog for a race test's thread: waits, 1 ms at a time, until `isDone()`, or calls
/// `expire()` once `seconds` have passed (the caller records that and stops the others).
public func watchdog(seconds: Double, isDone: () -> Bool, expire: () -> Void) {
    let deadline = Date().addingTimeInterval(seconds)
    while !isDone() {
        if Date() > deadline {
            expire()
            return
        }
        usleep(1000)
    }
}

/// What a second `freeze()` answers while a write the caller parked (one that saw the map
/// unfrozen) holds up the first: runs `freeze` on a thread, waits until `isFrozen`, runs it
/// again on another thread, and tells whether that second call answered within 100 ms; then
/// calls `release` (which lets the parked write finish) and waits for the answer: its errno
/// (0 if it froze) and `count()` read right after it.
public func secondFreezeWhileAWriteIsParked(freeze: @escaping @Sendable () throws(MapError) -> Void,
                                            isFrozen: () -> Bool, count: @escaping @Sendable () -> Int,
                                            release: () -> Void) -> (answeredEarly: Bool, code: Int32, count: Int) {
    Thread { _ = try? freeze() }.start()
    while !isFrozen() { usleep(100) }
    usleep(50_000)
    let answered = Atomic<Bool>(false)
    let answer = Atomic<Int>(-1)
    Thread {
        let code: Int32
        do throws(MapError) { try freeze(); code = 0 } catch { code = error.code }
        answer.store(count() << 16 | Int(code), ordering: .relaxed)
        answered.store(true, ordering: .releasing)
    }.start()
    usleep(100_000)
    let answeredEarly = answered.load(ordering: .acquiring)
    release()
    while !answered.load(ordering: .acquiring) { usleep(100) }
    let word = answer.load(ordering: .relaxed)
    return (answeredEarly, Int32(word & 0xFFFF), word >> 16)
}

/// ``secondFreezeWhileAWriteIsParked(freeze:isFrozen:count:release:)`` for a write that
/// parks on `parking` (installed by the caller as the map's debug hook): runs `write` on a
/// thread of its own, waits until it parks, asks the second freeze, releases it and waits
/// until `write` has returned.
public func secondFreezeWhileAWriteIsParked(on parking: ParkingHook, write: @escaping @Sendable () -> Void,
                                            freeze: @escaping @Sendable () throws(MapError) -> Void,
                                            isFrozen: () -> Bool, count: @escaping @Sendable () -> Int)
    -> (answeredEarly: Bool, code: Int32, count: Int)
{
    let written = Atomic<Bool>(false)
    Thread {
        write()
        written.store(true, ordering: .releasing)
    }.start()
    parking.waitUntilParked()
    let second = secondFreezeWhileAWriteIsParked(freeze: freeze, isFrozen: isFrozen, count: count,
                                                 release: parking.release)
    while !written.load(ordering: .acquiring) { usleep(100) }
    return second
}

/// A test hook that parks the thread running it until ``release()``: install ``hook`` as a
/// map's debug hook, start the write on a thread of its own, then ``waitUntilParked()``.
public final class ParkingHook: Sendable {
    private let parked = Atomic<Bool>(false)
    private let released = Atomic<Bool>(false)

    public init() {}

    /// Marks the calling thread parked, then waits until ``release()``.
    public var hook: @Sendable () -> Void {
        { [self] in
            parked.store(true, ordering: .releasing)
            while !released.load(ordering: .acquiring) { usleep(100) }
        }
    }

    /// Waits until a thread runs ``hook``.
    public func waitUntilParked() {
        while !parked.load(ordering: .acquiring) { usleep(100) }
    }

    /// Lets the parked thread (and any later one) go on.
    public func release() { released.store(true, ordering: .releasing) }
}
