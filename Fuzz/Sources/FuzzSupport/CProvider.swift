import CFuzzSupport
import RCUMaps
#if canImport(Glibc)
import Glibc
#endif

/// The C test provider (Sources/CFuzzSupport/provider.c) as the model sees it.
public enum CProvider {
    /// A behaviour that never fails a callback (triggers off).
    public static func quietBehavior(transforms: Bool) -> fzp_behavior_t {
        var behavior = fzp_behavior_t()
        behavior.transforms = transforms ? 1 : 0
        behavior.find_trigger = -1
        behavior.addition_trigger = -1
        behavior.pre_deletion_trigger = -1
        return behavior
    }

    /// What the provider's callbacks answer, for a map storing `storedSize` bytes for
    /// `userSize`-byte user values (see provider.c for the stored layout).
    public static func rules(_ behavior: fzp_behavior_t, present: UInt32, storedSize: Int, userSize: Int) -> ProviderRules {
        let transforms = behavior.transforms != 0
        let hasFind = present & UInt32(FZP_CB_FIND) != 0
        let hasAddition = present & UInt32(FZP_CB_ADDITION) != 0
        let hasPreDeletion = present & UInt32(FZP_CB_PRE_DELETION) != 0
        let tokenized = storedSize >= 8
        let payload = transforms ? (tokenized ? min(userSize, storedSize - 8) : min(storedSize, userSize)) : userSize
        let project: ([UInt8]) -> [UInt8] = { value in
            Array(value.prefix(payload)) + [UInt8](repeating: 0, count: userSize - payload)
        }
        func fires(_ trigger: Int32, _ byte: UInt8) -> Bool { trigger >= 0 && UInt8(truncatingIfNeeded: trigger) == byte }
        return ProviderRules(
            transforms: transforms,
            additionError: { _, value in
                guard hasAddition, fires(behavior.addition_trigger, value[0]) else { return nil }
                return mapCResult(behavior.addition_result)
            },
            findError: { key, stored in
                guard hasFind else { return nil }
                if fires(behavior.find_trigger, key[0]), let error = mapCResult(behavior.find_result) { return error }
                guard transforms else { return nil }
                // Unset: an array slot never written, or (no room for a token) all-zero bytes.
                guard let stored else { return ENOENT }
                if !tokenized, project(stored).allSatisfy({ $0 == 0 }) { return ENOENT }
                return nil
            },
            deletionRefusal: { key in
                guard hasPreDeletion, fires(behavior.pre_deletion_trigger, key[0]) else { return nil }
                return mapCResult(behavior.pre_deletion_result)
            },
            project: transforms ? project : { $0 })
    }

    /// The tables of the providers registered for the whole process (reachable, so that
    /// LeakSanitizer does not count them at exit).
    nonisolated(unsafe) static var keptTables: [UnsafeMutableRawPointer] = []

    /// Registers the provider for `type` with a well-formed version-1 table; traps on failure.
    /// The table stays allocated for the life of the process (the ABI asks for that).
    public static func registerFixed(type: UInt32, base: UInt32, transforms: Bool, present: UInt32,
                                     binding: OpaquePointer) {
        let size = UInt32(MemoryLayout<UInt>.size * 7 + 8)
        let table = fzp_dispatch_create(1, size, Int(size), present)!
        keptTables.append(table)
        let registration = fzp_registration_create(1, 40, 40, type, base, transforms ? 1 : 0, 0, table, binding)
        let result = fzp_register(registration, 1)
        free(registration)
        guard result == 0 else { fuzzFail("registering the C provider for type \(type) failed: \(errnoName(result))") }
    }
}

/// Checks of a C provider binding, after each operation and after the map is dropped.
public final class CProviderChecks {
    let binding: OpaquePointer
    let transforms: Bool
    let tokenized: Bool
    /// Identity providers: additions − deletions left by the maps dropped before this one.
    var baseline: Int64 = 0

    /// Identity providers without an addition callback cannot be balanced against deletions.
    let countsAdditions: Bool

    public init(binding: OpaquePointer, transforms: Bool, storedSize: Int, countsAdditions: Bool = true) {
        self.binding = binding
        self.transforms = transforms
        tokenized = storedSize >= 8
        self.countsAdditions = countsAdditions
    }

    public var stats: fzp_stats_t { fzp_binding_stats(binding) }

    public func setPhase(helper: Bool, teardown: Bool) {
        fzp_binding_set_phase(binding, helper ? 1 : 0, teardown ? 1 : 0)
    }

    /// While the map lives: the provider holds exactly one stored value per entry (tokens),
    /// or (identity) additions minus deletions is the entry count (arrays: every addition
    /// displaced a value, so zero).
    public func afterOperation(_ model: MapModel) {
        let stats = self.stats
        if transforms {
            guard tokenized else { return }
            let entries = model.isArray ? model.slots.count : model.entries.count
            fuzzCheck(stats.live_tokens == Int64(entries),
                      "the provider holds \(stats.live_tokens) stored values, the map \(entries) entries: a deletion callback was missed or ran twice")
        } else if countsAdditions {
            let live = stats.additions - stats.deletions - baseline
            let expected = model.isArray ? 0 : Int64(model.entries.count)
            fuzzCheck(live == expected,
                      "additions \(stats.additions) − deletions \(stats.deletions) = \(live), model expects \(expected)")
        }
    }

    /// After the map is gone: every value was reported once with MAP_CLEANUP, every context
    /// deleted once.
    public func afterDrop(_ model: MapModel) {
        let stats = self.stats
        fuzzCheck(stats.map_deletes == stats.creates, "map_delete ran \(stats.map_deletes) times for \(stats.creates) creates")
        fuzzCheck(stats.live_contexts == 0, "\(stats.live_contexts) map contexts never deleted")
        if transforms {
            fuzzCheck(stats.live_tokens == 0, "\(stats.live_tokens) stored values never reported deleted after teardown")
        } else if countsAdditions {
            let live = stats.additions - stats.deletions - baseline
            let expected: Int64 = model.isArray ? -Int64(model.maxEntries) : 0
            fuzzCheck(live == expected, "after teardown additions − deletions = \(live), expected \(expected)")
            baseline += live
        }
    }
}

extension ExerciseHooks {
    /// Hooks that keep a C provider binding's phase in step and check its accounting.
    public mutating func attach(_ checks: CProviderChecks) {
        setPhase = { helper, teardown in checks.setPhase(helper: helper, teardown: teardown) }
        setStaleFinds = { allow in fzp_binding_allow_stale_finds(checks.binding, allow ? 1 : 0) }
        afterOperation = { model in checks.afterOperation(model) }
        afterDrop = { model in checks.afterDrop(model) }
        mapCreated = { map in
            guard let provider = map as? RawCustomMap else { fuzzFail("a custom map is not a RawCustomMap") }
            let attached = fzp_attach_map(provider.cHandle)
            fuzzCheck(attached == 0 || fzp_binding_stats(checks.binding).live_contexts == 0 || !fzp_have_client().boolValue,
                      "the C provider's map context is not reachable through map_context")
        }
    }
}

extension Int32 {
    var boolValue: Bool { self != 0 }
}
