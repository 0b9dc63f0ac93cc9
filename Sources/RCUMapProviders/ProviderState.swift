import RCUEpoch

/// State of the provider layer that threads share — each registry's bindings, each custom
/// map's program-type associations — guarded by one process-wide lock that a fork takes.
///
/// A fork while another thread held one of these (a registration, a map creation, an
/// association, `isRegistered`) left the child a lock held by a thread it does not have:
/// its first registration, custom map creation or association waited forever (found by
/// review, 2026-12-05, sixteenth session). A lock per registry or per map cannot each be
/// a fork participant (the table has 16 places), and these sections are short and rare
/// next to map operations, so they share one lock, which is a participant
/// (``EpochFork/Level/maps``: its holders never wait for a grace period, a registration
/// or another lock).
///
/// Not reentrant: a `withLock` body must not enter another one (none does: each copies
/// what it needs out and works outside).
final class ProviderState<Value>: @unchecked Sendable {
    // @unchecked Sendable: `value` is only touched with the shared lock held.
    @exclusivity(unchecked) private var value: Value

    init(_ value: Value) { self.value = value }

    /// Runs `body` with the value, the provider layer's lock held.
    @inline(__always)
    func withLock<Result, Failure: Error>(_ body: (inout Value) throws(Failure) -> Result) throws(Failure) -> Result {
        try ProviderState<Void>.lock.withLock { (_) throws(Failure) -> Result in try body(&value) }
    }
}

extension ProviderState where Value == Void {
    /// The one lock, made (and its fork participant registered) on first use.
    static let lock: ThreadLock<Void> = {
        EpochFork.addParticipant(level: .maps, prepare: { ProviderState<Void>.lock.lockForFork() },
                                 parent: { ProviderState<Void>.lock.unlockAfterFork() },
                                 child: { ProviderState<Void>.lock.unlockAfterFork() })
        return ThreadLock(())
    }()
}

#if DEBUG
extension MapProviderRegistry {
    /// Tests: runs `body` with the provider layer's state lock held (``ProviderState``).
    package static func _withStateLockHeld(_ body: () -> Void) { ProviderState<Void>.lock.withLock { _ in body() } }
}
#endif
