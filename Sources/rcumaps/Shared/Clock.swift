#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Monotonic time and sleeping, in nanoseconds.
enum MonotonicClock {
    /// Nanoseconds on `CLOCK_MONOTONIC`.
    @inline(__always)
    static func nanoseconds() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }

    /// Sleeps the calling thread until `deadline` (a ``nanoseconds()`` value) has passed.
    static func sleep(until deadline: UInt64) {
        while true {
            let now = nanoseconds()
            guard now < deadline else { return }
            let remaining = deadline - now
            var request = timespec(tv_sec: Int(remaining / 1_000_000_000),
                                   tv_nsec: Int(remaining % 1_000_000_000))
            _ = nanosleep(&request, nil)
        }
    }
}

/// A cheap per-thread pseudo-random generator (xorshift64*).
struct XorShiftRandom {
    private var state: UInt64

    /// A generator for stream `stream` (e.g. a thread index); never seeded with zero.
    init(stream: Int) {
        state = (UInt64(truncatingIfNeeded: stream) &+ 1) &* 0x9E37_79B9_7F4A_7C15 | 1
    }

    /// The next 64 random bits.
    @inline(__always)
    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }

    /// Stream `stream` of the family named by `seed` (a stress run's --seed), mixed by
    /// splitmix64 so that neighbouring seeds and streams are unrelated; never zero.
    init(seed: UInt64, stream: Int) {
        var mixed = seed &+ (UInt64(truncatingIfNeeded: stream) &+ 1) &* 0x9E37_79B9_7F4A_7C15
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        mixed ^= mixed >> 31
        state = mixed == 0 ? 0x2545_F491_4F6C_DD1D : mixed
    }

    /// A number in `0..<bound` (bound ≤ 2^32).
    @inline(__always)
    mutating func below(_ bound: Int) -> Int {
        Self.index(next(), below: UInt64(truncatingIfNeeded: bound))
    }

    /// An index in `0..<bound` from the high 32 bits of `random` (multiply-shift, bound ≤ 2^32).
    @inline(__always)
    static func index(_ random: UInt64, below bound: UInt64) -> Int {
        Int(truncatingIfNeeded: ((random >> 32) &* bound) >> 32)
    }
}
