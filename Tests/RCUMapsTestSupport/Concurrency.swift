import Foundation
import Synchronization

/// Runs `body(threadIndex)` on `count` new threads that start together, and waits for all.
public func runOnThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let group = DispatchGroup()
    let ready = Atomic<Int>(0)
    for index in 0..<count {
        group.enter()
        let thread = Thread {
            ready.wrappingAdd(1, ordering: .acquiringAndReleasing)
            while ready.load(ordering: .acquiring) < count { sched_yield() }
            body(index)
            group.leave()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }
    group.wait()
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
    private let messages = Mutex<[String]>([])
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
