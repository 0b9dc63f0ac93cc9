import CRCUMapsShim
import RCUBaseMaps
import RCUEpoch

/// The provider's deletion callbacks, installed in a custom map's base map, and the owner of
/// the map's context.
///
/// Lifetime: owned by the base map alone, so it is released right after the base map's
/// teardown has reported every remaining entry with `.mapCleanup` — and its `deinit` then
/// calls `postprocessMapDelete` and lets the provider go. That is the order the contract
/// requires, whatever thread drops the map.
final class ProviderHooks: MapEntryObserver, Sendable {
    let binding: ProviderBinding
    let context: (any MapProviderContext)?
    /// The provider's `postprocessElementDeletion`, or nil, and the same callback as a
    /// non-optional closure (a no-op if there is none): called from this `let`, its context
    /// is borrowed, while unwrapping the optional retained and released the context around
    /// every call.
    let hasPostDeletion: Bool
    let postDeletion: @Sendable (MapElementDeletion) -> Void
    /// Whether the provider has the deprecated `preprocessElementDeletion`: read once, so
    /// that a roll-back without one neither calls ``entryWillBeRemoved(key:value:flags:)``
    /// nor destroys the `MapError?` it returns (an outlined destroy through the runtime's
    /// generic value witnesses, about 27 instructions a roll-back).
    let hasPreDeletion: Bool

    init(binding: ProviderBinding, context: (any MapProviderContext)?) {
        self.binding = binding
        self.context = context
        hasPostDeletion = binding.dispatch.postprocessElementDeletion != nil
        hasPreDeletion = binding.dispatch.preprocessElementDeletion != nil
        // `if let`, not `??`: through the generic `??` the closure came back wrapped in two
        // reabstraction thunks, each run per call.
        if let callback = binding.dispatch.postprocessElementDeletion { postDeletion = callback } else { postDeletion = { _ in } }
    }

    deinit {
        binding.dispatch.postprocessMapDelete?(context)
        binding.liveMaps.wrappingSubtract(1, ordering: .acquiringAndReleasing)
    }

    /// The map's identity for the per-thread record of callbacks run under its lock.
    var identity: UnsafeRawPointer { UnsafeRawPointer(Unmanaged.passUnretained(self).toOpaque()) }

    /// Runs `body` — a provider callback the base map calls while it holds a lock (a bucket
    /// lock, an array slot) — recorded as such on this thread, so that the map's writes
    /// from inside it fail with EDEADLK instead of waiting for that lock forever
    /// (``RawCustomMap/checkNotInLockedCallback()``).
    @inline(__always)
    func underMapLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        rcumaps_callback_enter(identity)
        defer { rcumaps_callback_leave() }
        return try body()
    }

    /// Whether the provider has a pre-deletion callback (the deprecated
    /// `preprocessElementDeletion`): without one, base maps skip `entryWillBeRemoved`.
    var wantsAdvanceNotice: Bool { hasPreDeletion }

    // Both deletion callbacks run inside an epoch, as the seeds promise providers (the
    // base maps call some of these outside one; entering is cheap and nests).

    func entryWillBeRemoved(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer,
                            flags: MapOperationFlags) -> MapError? {
        preDeletion(key: key, value: value, flags: flags, underLock: true)
    }

    /// The deprecated pre-deletion callback, in a section; `underLock`: the base holds the
    /// entry's lock (recorded, for EDEADLK).
    private func preDeletion(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer,
                             flags: MapOperationFlags, underLock: Bool) -> MapError? {
        guard let preprocess = binding.dispatch.preprocessElementDeletion else { return nil }
        Epoch._libraryEnter()
        defer { Epoch._libraryExit() }
        do {
            // The bucket-locked and array bases call it with the entry's lock held (the
            // lock-free base refuses the deprecated callback at registration); a rollback,
            // whose value never entered the map, holds none, and its callback may write the
            // map (it was refused EDEADLK, and the undo silently lost: found by review).
            let call = MapElementDeletion(context: context, key: key, value: value, flags: flags)
            if underLock {
                try underMapLock { () throws(MapError) in try preprocess(call) }
            } else {
                try preprocess(call)
            }
            return nil
        } catch {
            // Only an explicit delete may be refused.
            return flags.contains(.update) || flags.contains(.mapCleanup) ? nil : error.asProviderRefusal()
        }
    }

    // Never inlined into its protocol witness thunk: Swift marks every call a thunk makes
    // `noinline`, so the section's `always_inline` C read-lock and unlock became three
    // calls there (about 69 of a pass-through update's 604 instructions). Called, this
    // function inlines them as every other section does.
    @inline(never)
    func entryWasRemoved(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapOperationFlags) {
        guard hasPostDeletion else { return }
        Epoch._libraryEnter()
        defer { Epoch._libraryExit() }
        // Called in place, not bound to a local (which retains the closure's context).
        postDeletion(MapElementDeletion(context: context, key: key, value: value, flags: flags))
    }

    /// Undoes a successful addition whose base update failed: the deletion callback with
    /// `.update`. The value never entered the map, so no bucket lock is held for it.
    func rollBack(key: UnsafeRawBufferPointer, storedValue: UnsafeRawBufferPointer, flags: MapOperationFlags) {
        let flags = flags.union([.update, .rollback])
        if hasPreDeletion { _ = preDeletion(key: key, value: storedValue, flags: flags, underLock: false) }
        entryWasRemoved(key: key, value: storedValue, flags: flags)
    }
}
