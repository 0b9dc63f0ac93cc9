import Foundation
import RCUEpoch
import RCUMapsTestSupport
import Synchronization
import Testing

/// The futex lock's two ways in (`lock`, and `lockBackingOff` for the one lock every
/// operation of a queue or stack map takes) exclude each other: threads that add to a plain
/// (non-atomic) counter under the lock lose no addition, also when holders sleep inside the
/// lock long enough that waiters give up spinning and sleep on the futex.
@Suite("Futex lock")
struct FutexLockTests {
    /// A lock word and a counter that only the lock protects.
    final class Guarded: @unchecked Sendable {
        // @unchecked Sendable: `counter` is only touched with `word`'s lock held.
        let word = UnsafeMutablePointer<Atomic<UInt32>>.allocate(capacity: 1)
        let counter = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        /// Holders seen inside the lock at once (must stay 1).
        let inside = Atomic<Int>(0)
        let overlaps = Atomic<Int>(0)

        init() {
            word.initialize(to: Atomic(0))
            counter.initialize(to: 0)
        }

        deinit {
            word.deinitialize(count: 1)
            word.deallocate()
            counter.deallocate()
        }

        /// One critical section: enter, check nobody else is inside, add, sometimes hold on.
        func add(backingOff: Bool, holdMicroseconds: UInt32) {
            if backingOff { FutexLock.lockBackingOff(word) } else { FutexLock.lock(word) }
            if inside.wrappingAdd(1, ordering: .relaxed).oldValue != 0 { overlaps.add(1, ordering: .relaxed) }
            // A read, a pause and a write: a second holder in between would lose an addition.
            let seen = counter.pointee
            if holdMicroseconds > 0 { usleep(holdMicroseconds) }
            counter.pointee = seen + 1
            inside.subtract(1, ordering: .relaxed)
            FutexLock.unlock(word)
        }
    }

    @Test(arguments: [true, false])
    func threadsAddingUnderTheLockLoseNothing(backingOff: Bool) {
        let guarded = Guarded()
        let threads = 4, additions = 20_000
        runOnThreads(threads) { thread in
            for index in 0..<additions {
                // Every 2,000th section sleeps 200 µs inside the lock: longer than a
                // backing-off waiter spins (about 57 µs), so waiters also go to sleep.
                let hold: UInt32 = (index + thread) % 2_000 == 0 ? 200 : 0
                // Both entries on the same word: `lockBackingOff` and `lock` share one protocol.
                guarded.add(backingOff: backingOff || index % 7 == 0, holdMicroseconds: hold)
            }
        }
        #expect(guarded.counter.pointee == threads * additions)
        #expect(guarded.overlaps.load(ordering: .relaxed) == 0)
        #expect(guarded.word.pointee.load(ordering: .relaxed) == 0)
    }
}
