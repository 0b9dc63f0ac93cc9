import CFuzzSupport
import FuzzSupport
import RCUMaps
#if canImport(Glibc)
import Glibc
#endif

/// FuzzMapDefinitions: `MapRegistry.create` with fuzzed definitions — every type ID class
/// (HASH, ARRAY, reserved built-ins, unregistered and registered custom types, IDs out of
/// range), sizes and capacities from zero and negative to Int.max (around Linux 6.18's
/// limits: key + value under 4 MiB − 48 and 2^27 entries for hashes, INT_MAX array
/// values), every creation flag (access flags, zero seed, mmapable, …), names (UTF-8
/// included), NUMA nodes, both hash implementations, pool tags, lock words — against a
/// model of Linux 6.18's validation order (MapDefinition.validateHash / validateArray:
/// RDONLY|WRONLY and the NUMA node; the type's flags, zero sizes EINVAL; the size limits
/// E2BIG; the name EINVAL; the lock word EINVAL / EACCES), then the allocation. A map that
/// is created then runs a few operations against the reference model, with its odd sizes
/// and flags.
func makeTarget() -> FuzzTarget {
    FuzzTarget(name: "FuzzMapDefinitions", settleEvery: 512, seeds: mapDefinitionSeeds) { input in
        runMapDefinition(&input)
    }
}

let maxValueSize = MapDefinition.maxValueSize
let maxKeyPlusValue = MapDefinition.maxHashKeyPlusValueSize
let maxBlockSize = EpochMemory.maxBlockSize
/// Maps whose storage would take more than this are not created (their validation is
/// still checked when it fails before any allocation), to keep inputs fast and libFuzzer's
/// malloc limit out of the way.
let allocationLimit = 4 << 20

enum CustomKind { case object, cTransform, cIdentity, swift }

func customKind(_ type: MapType) -> (CustomKind, ProviderBaseMap)? {
    for base in SharedProviders.bases {
        if type == SharedProviders.objectType(base) { return (.object, base) }
        if type == SharedProviders.cTransformType(base) { return (.cTransform, base) }
        if type == SharedProviders.cIdentityType(base) { return (.cIdentity, base) }
        if base != .hashLockFree, type == SharedProviders.swiftType(base) { return (.swift, base) }
    }
    return nil
}

let nameCharacters = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.".utf8)
let badNameCharacters: [[UInt8]] = [Array("-".utf8), Array(" ".utf8), Array("/".utf8), [0], Array("é".utf8), [0xFF],
                                    Array("€".utf8)]

/// Interesting creation flags (a selector past the list reads raw bits).
let flagChoices: [MapCreationFlags] = [
    [], [], [], .noPrealloc, .noCommonLRU, .clone,
    .readOnly, .writeOnly, [.readOnly, .writeOnly], .readOnlyProgram, .writeOnlyProgram,
    [.readOnlyProgram, .writeOnlyProgram], [.readOnly, .writeOnlyProgram], .zeroSeed, [.zeroSeed, .noPrealloc],
    .mmapable, [.mmapable, .readOnly], [.mmapable, .writeOnly], [.mmapable, .readOnlyProgram], .innerMap,
    .numaNode, .stackBuildID, .preserveElements, MapCreationFlags(rawValue: 1 << 13), MapCreationFlags(rawValue: 1 << 31),
]

func decodeDefinition(_ input: inout FuzzInput) -> MapDefinition {
    // (QUEUE 10, STACK 12 and PERCPU_ARRAY 5, then PERCPU_HASH 4, LPM_TRIE 9 and
    // LRU_PERCPU_HASH 11, come last: the seeds' selectors of the others stay as they were.)
    let type: UInt32 = input.pick([1, 1, 1, 2, 2, 2, 3, 8, 14, 0, 15, 4095, 4096, 4100, 4101, 4102, 4110, 4111, 4112,
                                   4120, 4121, 4122, 4130, 4131, 65535, 65536, 10, 12, 5, 4, 9, 11]) { $0.u32() }
    let sizes: [Int] = [0, -1, 1, 2, 4, 8, 16, 64, 512, 513, 1024, Int(UInt32.max), Int(UInt32.max) + 1, .max, .min]
    // Keys around the hash's key + value limit (with 4- or 8-byte values: one under, one at).
    var keySize = input.pick(sizes + [4, 4, 8, 4096, 1 << 21, maxKeyPlusValue - 8, maxKeyPlusValue - 5]) { Int($0.u16()) }
    var valueSize = input.pick(sizes + [4, 4, 9, 4096, maxValueSize, maxValueSize + 1, 1 << 21, 1 << 22,
                                        Int(Int32.max), Int(Int32.max) + 1, 12]) { Int($0.u16()) }
    let maxEntries = input.pick([0, -5, 1, 2, 3, 64, 1000, 65536, 1 << 20, Int(UInt32.max), Int(UInt32.max) + 1, .max, .min,
                                 1, 16, MapDefinition.maxHashEntries, MapDefinition.maxHashEntries + 1, 4096]) {
        $0.bool() ? Int($0.u16()) : Int($0.u32())
    }
    if keySize == 1024, input.byte() & 1 == 1 { keySize = Int(input.u32()) }
    if valueSize == 1024, input.byte() & 1 == 1 { valueSize = Int(input.u32()) }
    let flags = input.pick(flagChoices) { MapCreationFlags(rawValue: $0.u32() & ($0.bool() ? 0x1FFF : .max)) }
    var name: [UInt8] = []
    let nameLength = Int(input.byte() % 20)
    for _ in 0..<nameLength {
        let choice = Int(input.byte())
        if choice < 0xF0 { name.append(nameCharacters[choice % nameCharacters.count]) }
        else { name += badNameCharacters[choice % badNameCharacters.count] }
    }
    let numaNode: Int? = input.pick([nil, nil, nil, 0, 1, -1, NUMATopology.nodeCount, .max]) { Int($0.byte()) }
    let implementation: HashImplementation = input.bool() ? .bucketLocked : .lockFree
    // Random tags from a set of 64: the library's statistics track 1,023 tags and pool any
    // further ones in a slot that `allStatistics()` does not list, so after about a thousand
    // fresh random tags the end-of-run leak check saw no new tag's leak (found by review,
    // 2026-12-06).
    let poolTag: PoolTag? = input.pick([nil, nil, FuzzTags.hashLockFree]) { PoolTag(rawValue: $0.u32() & 63 | 0x8000_0000) }
    // A lock word: none mostly; inside the value, at its end, past it, misaligned, negative.
    var lockOffset: Int? = input.pick([nil, nil, nil, 0, 0, 4, 8, valueSize &- 4, valueSize &- 2, valueSize, -4, 2,
                                       Int.max, Int.min]) { Int($0.u16()) }
    if let offset = lockOffset, offset > Int.max - 4, offset % 4 == 0 || input.bool() {
        // (Fixed defect 7: a multiple of 4 within 4 of Int.max trapped in the validation.)
        lockOffset = input.bool() ? Int.max - 3 : Int.max - 4
    }
    return MapDefinition(type: MapType(rawValue: type), keySize: keySize, valueSize: valueSize, maxEntries: maxEntries,
                         flags: flags, name: String(decoding: name, as: UTF8.self), numaNode: numaNode,
                         hashImplementation: implementation, poolTag: poolTag, lockOffset: lockOffset)
}

/// The outcome the model predicts: an errno, or success with the bytes the map's storage
/// takes up front (nil: not known to be small — the map is then not created).
enum Predicted {
    case failure(Int32)
    case success(bytes: Int?)
    /// A type whose creation rules this model does not encode (LRU_HASH, PERCPU_HASH,
    /// LRU_PERCPU_HASH, LPM_TRIE: their unit tests check Linux's errnos rule by rule):
    /// creation must not crash, and a refusal must carry an errno.
    case unmodelled
}

func roundUp8(_ n: Int) -> Int { (n + 7) & ~7 }

/// Linux's `bpf_obj_name_cpy`: the name ends at its first NUL; at most 15 bytes of the set.
func nameIsValid(_ name: String) -> Bool {
    let bytes = name.utf8.prefix { $0 != 0 }
    return bytes.count <= 15 && bytes.allSatisfy { nameCharacters.contains($0) }
}

/// The node a definition asks for: `NUMA_NO_NODE` (-1, or `UInt32.max`, the same `u32`) is
/// none, as Linux's `map_create` takes it.
func requestedNode(_ d: MapDefinition) -> Int? {
    guard let node = d.numaNode, node != -1, node != Int(UInt32.max) else { return nil }
    return node
}

/// Whether a per-CPU type must refuse the definition's NUMA placement: a node, or the flag
/// without one (Linux's node 0).
func asksForNode(_ d: MapDefinition) -> Bool {
    requestedNode(d) != nil || (d.numaNode == nil && d.flags.contains(.numaNode))
}

/// Linux 6.18's checks around the type's own (MapDefinition.validateCommon, then
/// validateAfterAllocation): RDONLY|WRONLY together and the NUMA node first; the name, then
/// the lock word (inside the value, 4-aligned: EINVAL; with the program access flags:
/// EACCES) after the type's size limits and its allocation (`afterAllocation`).
func validateCommon(_ d: MapDefinition) -> Int32? {
    if d.flags.isSuperset(of: [.readOnly, .writeOnly]) { return EINVAL }
    // The flag without a node is node 0, checked too (as Linux's attribute's zero).
    let checked = requestedNode(d) ?? (asksForNode(d) ? 0 : nil)
    if let node = checked, node < 0 || node >= NUMATopology.nodeCount || !NUMATopology.isOnline(node) { return EINVAL }
    return nil
}

func validateNameAndLock(_ d: MapDefinition, valueSize: Int) -> Int32? {
    if !nameIsValid(d.name) { return EINVAL }
    guard let offset = d.lockOffset else { return nil }
    if offset < 0 || offset % 4 != 0 || offset > valueSize - 4 { return EINVAL }
    if !d.flags.isDisjoint(with: [.readOnlyProgram, .writeOnlyProgram]) { return EACCES }
    return nil
}

/// HASH (both implementations): flags among NO_PREALLOC, NUMA_NODE, the access flags and
/// ZERO_SEED (not both program access flags), positive sizes (EINVAL); key + value under
/// 4 MiB − 48, at most 2^27 entries (E2BIG); the name and lock word after the allocation.
func validateHash(_ d: MapDefinition, valueSize: Int) -> Int32? {
    if let error = validateCommon(d) { return error }
    if !MapDefinition.hashFlags.isSuperset(of: d.flags) || d.flags.isSuperset(of: [.readOnlyProgram, .writeOnlyProgram]) {
        return EINVAL
    }
    if d.maxEntries <= 0 || d.keySize <= 0 || valueSize <= 0 { return EINVAL }
    let (sum, overflow) = d.keySize.addingReportingOverflow(valueSize)
    if overflow || sum >= maxKeyPlusValue { return E2BIG }
    if d.maxEntries > MapDefinition.maxHashEntries { return E2BIG }
    return nil
}

/// ARRAY: 4-byte keys, positive values, 1...2^32-1 entries, flags among NUMA_NODE,
/// MMAPABLE, INNER_MAP and the access flags (EINVAL); values up to INT_MAX (E2BIG); the
/// name and lock word after the allocation.
func validateArray(_ d: MapDefinition, valueSize: Int) -> Int32? {
    if let error = validateCommon(d) { return error }
    if d.maxEntries <= 0 || d.maxEntries > Int(UInt32.max) || d.keySize != 4 || valueSize <= 0
        || !MapDefinition.arrayFlags.isSuperset(of: d.flags) || d.flags.isSuperset(of: [.readOnlyProgram, .writeOnlyProgram]) {
        return EINVAL
    }
    if valueSize > MapDefinition.maxArrayValueSize { return E2BIG }
    return nil
}

/// Bytes allocated at creation: ARRAY exactly (maxEntries × stride; values over a word, and
/// every value of a custom map's base, get a sequence word; an mmapable array none; a
/// product past Int.max is ENOMEM); the bucket-locked HASH by its table sizing (BucketTable:
/// buckets for maxEntries at 2/3 or 3/4 load, at most 2^22 first-level buckets); the
/// lock-free HASH a small table. nil: the product overflows.
func storageBytes(_ d: MapDefinition, isArray: Bool, bucketLocked: Bool, valueSize: Int, observed: Bool) -> Int? {
    if isArray {
        let sequenced = !d.flags.contains(.mmapable) && (valueSize > 8 || observed)
        let stride = roundUp8(valueSize) + (sequenced ? 8 : 0)
        let (bytes, overflow) = d.maxEntries.multipliedReportingOverflow(by: stride)
        return overflow ? nil : bytes
    }
    guard bucketLocked else { return 0 }
    let slotStride = roundUp8(d.keySize) + roundUp8(valueSize)
    let perLine = (64 - 16) / slotStride
    let slots = perLine >= 2 ? min(perLine, 6) : 6
    let bucketStride = perLine >= 2 ? 64 : 16 + slots * slotStride
    let (numerator, denominator) = perLine >= 2 ? (2, 3) : (3, 4)
    let (scaled, overflow) = d.maxEntries.multipliedReportingOverflow(by: denominator)
    let perBucket = numerator * slots
    let wanted = overflow ? 1 << 22 : (scaled + perBucket - 1) / perBucket
    let buckets = max(1, min(wanted, 1 << 22))
    let (bytes, tooBig) = buckets.multipliedReportingOverflow(by: bucketStride)
    return tooBig ? .max : bytes
}

/// Creation of a validated base map: an array whose storage size overflows is ENOMEM; a
/// bucket table past the largest epoch block is ENOMEM; an array too large for a block goes
/// to anonymous pages (success, if the system has them: not created here).
func allocation(_ d: MapDefinition, isArray: Bool, bucketLocked: Bool, valueSize: Int, observed: Bool) -> Predicted {
    guard let bytes = storageBytes(d, isArray: isArray, bucketLocked: bucketLocked, valueSize: valueSize, observed: observed)
    else { return .failure(ENOMEM) }
    if !isArray, bytes > maxBlockSize { return .failure(ENOMEM) }
    return .success(bytes: bytes)
}

/// QUEUE and STACK, as Linux 6.18's `queue_stack_map_alloc_check` and `map_create`: key size
/// 0, positive value size, 1...2^32-1 entries, flags among NUMA_NODE and the access flags
/// (never both program access flags) — else EINVAL; values over KMALLOC_MAX_SIZE (4 MiB) E2BIG;
/// after the ring's allocation the name (EINVAL), then a lock word: EINVAL (Linux's
/// map_check_btf refuses value BTF on a map with no key type and no map_check_btf of its own).
func validateQueueStack(_ d: MapDefinition) -> Int32? {
    if let error = validateCommon(d) { return error }
    let allowed: MapCreationFlags = [.numaNode, .readOnly, .writeOnly, .readOnlyProgram, .writeOnlyProgram]
    if d.maxEntries <= 0 || d.maxEntries > Int(UInt32.max) || d.keySize != 0 || d.valueSize <= 0
        || !allowed.isSuperset(of: d.flags) || d.flags.isSuperset(of: [.readOnlyProgram, .writeOnlyProgram]) {
        return EINVAL
    }
    if d.valueSize > 1 << 22 { return E2BIG }
    return nil
}

/// PERCPU_ARRAY, as Linux 6.18's `array_map_alloc_check` for a per-CPU array: 4-byte keys,
/// positive values, 1...2^32-1 entries, flags among the access flags only (NUMA_NODE,
/// MMAPABLE, INNER_MAP refused), not both program access flags, no NUMA node — else EINVAL;
/// values over INT_MAX, or round_up(valueSize, 8) over 32768, E2BIG; after the allocation the
/// name (EINVAL), then a lock word: EINVAL / EACCES as for any map, else EOPNOTSUPP (no spin
/// lock in per-CPU values).
func validatePerCPUArray(_ d: MapDefinition) -> Int32? {
    if let error = validateCommon(d) { return error }
    let allowed: MapCreationFlags = [.readOnly, .writeOnly, .readOnlyProgram, .writeOnlyProgram]
    if d.maxEntries <= 0 || d.maxEntries > Int(UInt32.max) || d.keySize != 4 || d.valueSize <= 0
        || !allowed.isSuperset(of: asksForNode(d) ? d.flags : d.flags.subtracting(.numaNode))
        || d.flags.isSuperset(of: [.readOnlyProgram, .writeOnlyProgram])
        || requestedNode(d) != nil {
        return EINVAL
    }
    if d.valueSize > MapDefinition.maxArrayValueSize || roundUp8(d.valueSize) > 32768 { return E2BIG }
    return nil
}

/// What a lock word in the value gets once its offset and flags passed: HASH and ARRAY take
/// it; other types refuse it with EOPNOTSUPP (`map_check_btf`), QUEUE and STACK with EINVAL.
enum LockRule { case allowed, notSupported, invalid }

/// Linux's `map_create` checks the name and the lock word after `ops->map_alloc`: an
/// allocation that fails answers ENOMEM first. A map predicted to allocate more than
/// ``allocationLimit`` is not created, so its name and lock word are not predicted either.
func afterAllocation(_ outcome: Predicted, _ d: MapDefinition, valueSize: Int, lock: LockRule) -> Predicted {
    guard case .success(let bytes) = outcome else { return outcome }
    guard let bytes, bytes <= allocationLimit else { return outcome }
    let error: Int32?
    switch lock {
    case .invalid: error = !nameIsValid(d.name) || d.lockOffset != nil ? EINVAL : nil
    case .allowed: error = validateNameAndLock(d, valueSize: valueSize)
    case .notSupported: error = validateNameAndLock(d, valueSize: valueSize) ?? (d.lockOffset != nil ? EOPNOTSUPP : nil)
    }
    return error.map { .failure($0) } ?? outcome
}

func predict(_ d: MapDefinition) -> Predicted {
    let raw = d.type.rawValue
    if raw == 5 {
        if let error = validatePerCPUArray(d) { return .failure(error) }
        // One block per possible CPU of maxEntries slots (a sequence word before values over
        // a word), each block rounded up to 64 bytes; an overflowing product is ENOMEM.
        let stride = roundUp8(d.valueSize) + (d.valueSize > 8 ? 8 : 0)
        let (block, overflow) = d.maxEntries.multipliedReportingOverflow(by: stride)
        guard !overflow, block <= Int.max - 63 else { return .failure(ENOMEM) }
        let (bytes, tooBig) = ((block + 63) & ~63).multipliedReportingOverflow(by: RawPerCPUArrayMap.possibleCPUs)
        return afterAllocation(tooBig ? .failure(ENOMEM) : .success(bytes: bytes), d, valueSize: d.valueSize,
                               lock: .notSupported)
    }
    if raw == 10 || raw == 12 {
        if let error = validateQueueStack(d) { return .failure(error) }
        // A 64-byte header and Linux's max_entries + 1 slots of value_size bytes (at most
        // 2^32 × 4 MiB: no overflow); an allocation that fails would be ENOMEM.
        return afterAllocation(.success(bytes: 64 + (d.maxEntries + 1) * d.valueSize), d, valueSize: d.valueSize,
                               lock: .invalid)
    }
    if raw == 1 || raw == 2 {
        let isArray = raw == 2
        let error = isArray ? validateArray(d, valueSize: d.valueSize) : validateHash(d, valueSize: d.valueSize)
        if let error { return .failure(error) }
        return afterAllocation(allocation(d, isArray: isArray, bucketLocked: d.hashImplementation == .bucketLocked,
                                          valueSize: d.valueSize, observed: false),
                               d, valueSize: d.valueSize, lock: .allowed)
    }
    if d.type.isCustom {
        guard let (kind, base) = customKind(d.type) else { return .failure(EINVAL) }  // no provider
        // RawCustomMap: sizes the provider is told about must be 1...2^32-1; no lock word.
        for size in [d.keySize, d.valueSize, d.maxEntries] where size <= 0 || size > Int(UInt32.max) {
            return .failure(EINVAL)
        }
        if d.lockOffset != nil { return .failure(EINVAL) }
        // The create callback and the stored size it chooses.
        let stored: Int
        switch kind {
        case .object:
            guard d.valueSize == 4 else { return .failure(EINVAL) }
            stored = 8
        case .cTransform: stored = (d.valueSize &+ 8) & 0xFFFF_FFFF  // a uint32_t: wraps past 2^32
        case .cIdentity, .swift: stored = d.valueSize
        }
        if stored == 0 || stored > maxValueSize { return .failure(EINVAL) }
        // Then the base map checks the definition with the stored size; an array base
        // cannot be mmapable.
        let isArray = base == .array
        let error = isArray ? validateArray(d, valueSize: stored) : validateHash(d, valueSize: stored)
        if let error { return .failure(error) }
        if isArray, d.flags.contains(.mmapable) { return .failure(EINVAL) }
        // (The lock word was refused above: only the name is left.)
        return afterAllocation(allocation(d, isArray: isArray, bucketLocked: base == .hashBucketLocked,
                                          valueSize: stored, observed: true),
                               d, valueSize: stored, lock: .allowed)
    }
    // PERCPU_HASH (4), LRU_HASH (8), LPM_TRIE (9), LRU_PERCPU_HASH (11): served, not modelled.
    if [4, 8, 9, 11].contains(raw) { return .unmodelled }
    if raw >= 3, raw <= 14 { return .failure(EOPNOTSUPP) }
    return .failure(EINVAL)
}

func runMapDefinition(_ input: inout FuzzInput) {
    let providers = SharedProviders.shared
    let definition = decodeDefinition(&input)
    let predicted = predict(definition)
    let custom = customKind(definition.type)
    // Provider bindings: counts start at zero; C transforms store value + 8 bytes.
    for base in SharedProviders.bases {
        fzp_binding_reset(providers.cTransform[base]!)
        fzp_binding_reset(providers.cIdentity[base]!)
        providers.swift[base]?.reset()
    }
    let denied: UInt32 = definition.flags.contains(.writeOnlyProgram) ? 1 : 0
    if let (kind, base) = custom, kind == .cTransform {
        var behavior = SharedProviders.transformBehavior(userValueSize: definition.valueSize)
        behavior.find_element_may_be_denied = denied
        fzp_binding_set_behavior(providers.cTransform[base]!, &behavior)
    }
    if let (kind, base) = custom, kind == .cIdentity {
        var behavior = SharedProviders.identityBehavior
        behavior.find_element_may_be_denied = denied
        fzp_binding_set_behavior(providers.cIdentity[base]!, &behavior)
    }
    if case .success(let bytes) = predicted, bytes.map({ $0 > allocationLimit }) ?? true {
        trace("\(definition): predicted success with \(bytes.map { "\($0)" } ?? "?") bytes: not created")
        return
    }
    trace("\(definition): predicted \(predicted)")
    if case .unmodelled = predicted {
        // Created only at sizes that cannot exhaust memory (the model cannot tell the bytes).
        if definition.maxEntries <= 4096, definition.keySize <= 512, definition.valueSize <= 4096 {
            createAndDrop(definition, predicted: predicted, custom: custom)
        } else {
            trace("\(definition): not modelled and large: not created")
        }
    } else if case .success = predicted, definition.type == .queue || definition.type == .stack {
        exerciseQueueStack(definition, &input)
    } else if case .success = predicted, isExercisable(definition, custom: custom) {
        // The exerciser creates the map (a failure stops the run) and drops it at the end.
        exercise(definition, custom: custom, &input)
    } else {
        createAndDrop(definition, predicted: predicted, custom: custom)
    }
    // Every provider context created was deleted (also when the base map refused).
    for base in SharedProviders.bases {
        for binding in [providers.cTransform[base]!, providers.cIdentity[base]!] {
            let stats = fzp_binding_stats(binding)
            fuzzCheck(stats.creates == stats.map_deletes && stats.live_contexts == 0,
                      "C provider: \(stats.creates) creates, \(stats.map_deletes) map deletes after create(\(definition))")
        }
        if let swift = providers.swift[base] {
            fuzzCheck(swift.creates == swift.mapDeletes, "Swift provider: \(swift.creates) creates, \(swift.mapDeletes) deletes")
        }
    }
    let objects = providers.objects.values.map(\.liveMaps).reduce(0, +)
    fuzzCheck(objects == 0, "the object map provider counts \(objects) live maps")
}

/// Creates the map and drops it at once, its C provider (if any) told that the deletions it
/// sees next are the teardown's.
func createAndDrop(_ definition: MapDefinition, predicted: Predicted, custom: (CustomKind, ProviderBaseMap)?) {
    var binding: OpaquePointer?
    if let (kind, base) = custom {
        if kind == .cTransform { binding = SharedProviders.shared.cTransform[base] }
        if kind == .cIdentity { binding = SharedProviders.shared.cIdentity[base] }
    }
    func create() {
        let created = createMap(definition)
        switch (predicted, created) {
        case (.failure(let code), .failure(let error)):
            fuzzCheck(error.code == code, "create(\(definition)): \(error), model expects \(errnoName(code))")
        case (.failure(let code), .success):
            fuzzFail("create(\(definition)) succeeded, model expects \(errnoName(code))")
        case (.success, .failure(let error)):
            fuzzFail("create(\(definition)): \(error), model expects success")
        case (.success, .success(let map)):
            fuzzCheck(map.definition == definition, "the map's definition \(map.definition) is not the one it was created with")
        case (.unmodelled, .failure(let error)):
            fuzzCheck(error.code > 0, "create(\(definition)): \(error) carries no errno")
        case (.unmodelled, .success):
            break
        }
        withExtendedLifetime(created) {
            if let binding { fzp_binding_set_phase(binding, 0, 1) }
        }
    }
    create()  // the map is gone when this returns
    if let binding { fzp_binding_set_phase(binding, 0, 0) }
}

/// Object maps need handles for values, and huge keys and values megabytes per operation:
/// those maps are only created and dropped.
func isExercisable(_ definition: MapDefinition, custom: (CustomKind, ProviderBaseMap)?) -> Bool {
    if let (kind, _) = custom, kind == .object { return false }
    // PERCPU_ARRAY's user-mode values are per-CPU arrays: not the reference model's layout
    // (its semantics are tested in PerCPUArrayMapTests); created and dropped only.
    if definition.type == .perCPUArray { return false }
    return definition.keySize <= 65536 && definition.valueSize <= 65536 && definition.maxEntries <= 65536
}

/// A few operations on a new map of this definition against the reference model.
func exercise(_ definition: MapDefinition, custom: (CustomKind, ProviderBaseMap)?, _ input: inout FuzzInput) {
    let providers = SharedProviders.shared
    let isArray = custom.map { $0.1 == .array } ?? (definition.type == .array)
    let bucket = custom.map { $0.1 == .hashBucketLocked } ?? (definition.hashImplementation == .bucketLocked)
    let modelBase: MapModel.Base = isArray ? .array : bucket ? .bucket : .lockFree
    var rules: ProviderRules?
    var hooks = ExerciseHooks()
    switch custom {
    case nil, (.object, _)?: break
    case (.cTransform, let base)?:
        let behavior = SharedProviders.transformBehavior(userValueSize: definition.valueSize)
        rules = CProvider.rules(behavior, present: SharedProviders.transformPresent,
                                storedSize: definition.valueSize + 8, userSize: definition.valueSize)
        hooks.attach(CProviderChecks(binding: providers.cTransform[base]!, transforms: true,
                                     storedSize: definition.valueSize + 8))
    case (.cIdentity, let base)?:
        rules = CProvider.rules(SharedProviders.identityBehavior, present: SharedProviders.identityPresent(base),
                                storedSize: definition.valueSize, userSize: definition.valueSize)
        hooks.attach(CProviderChecks(binding: providers.cIdentity[base]!, transforms: false,
                                     storedSize: definition.valueSize))
    case (.swift, _)?:
        rules = SwiftProviderState.rules
    }
    let attach = hooks.mapCreated
    hooks.mapCreated = { map in
        fuzzCheck(map.definition == definition, "the map's definition \(map.definition) is not the one it was created with")
        attach(map)
    }
    let exerciser = MapExerciser(
        makeMap: {
            switch createMap(definition) {
            case .success(let map): return map
            case .failure(let error): fuzzFail("create(\(definition)): \(error), model expects success")
            }
        },
        makeModel: {
            MapModel(base: modelBase, custom: custom != nil, keySize: definition.keySize, valueSize: definition.valueSize,
                     maxEntries: definition.maxEntries, flags: definition.flags, lockOffset: definition.lockOffset,
                     rules: rules)
        },
        hooks: hooks)
    exerciser.maxOperations = 24
    exerciser.run(&input)
}

/// A few operations on a new QUEUE or STACK against a model — an array of values, oldest
/// first — with Linux 6.18's rules (RawQueueStackMap): user and helper push / pop / peek,
/// `BPF_EXIST` overwriting the oldest, push flags, access flags and freeze, delete and
/// get-next-key (EINVAL), batches (ENOTSUPP), non-empty keys and wrong-sized buffers.
func exerciseQueueStack(_ definition: MapDefinition, _ input: inout FuzzInput) {
    let created: any RawMap
    switch createMap(definition) {
    case .success(let map): created = map
    case .failure(let error): fuzzFail("create(\(definition)): \(error), model expects success")
    }
    guard let map = created as? RawQueueStackMap else { fuzzFail("create(\(definition)) made a \(type(of: created))") }
    fuzzCheck(map.definition == definition, "the map's definition \(map.definition) is not the one it was created with")
    let exerciser = QueueStackExerciser(map)
    for _ in 0..<24 where !input.isExhausted {
        exerciser.step(&input)
        fuzzCheck(map.count == exerciser.model.count, "count \(map.count), model \(exerciser.model.count) on \(definition)")
    }
}

/// The state of ``exerciseQueueStack(_:_:)``: the map, its model, and one method per operation.
final class QueueStackExerciser {
    let map: RawQueueStackMap
    let definition: MapDefinition
    let isStack: Bool
    let size: Int
    let capacity: Int
    let userRead: Bool
    let programWrite: Bool
    let readOnly: Bool
    var frozen = false
    var model: [[UInt8]] = []
    var serial: UInt64 = 0
    let noKey = UnsafeRawBufferPointer(start: nil, count: 0)

    init(_ map: RawQueueStackMap) {
        self.map = map
        definition = map.definition
        isStack = definition.type == .stack
        size = definition.valueSize
        capacity = definition.maxEntries
        userRead = !definition.flags.contains(.writeOnly)
        programWrite = !definition.flags.contains(.readOnlyProgram)
        readOnly = definition.flags.contains(.readOnly)
    }

    var userWrite: Bool { !readOnly && !frozen }

    func code(_ body: () throws -> Void) -> Int32 {
        do { try body(); return 0 } catch let error as MapError { return error.code } catch { return -1 }
    }

    func expect(_ what: String, _ got: Int32, _ expected: Int32) {
        fuzzCheck(got == expected, "\(what) on \(definition): \(errnoName(got)), model expects \(errnoName(expected))")
    }

    func nextValue() -> [UInt8] {
        serial &+= 1
        var value = [UInt8](repeating: 0, count: size)
        for index in 0..<size { value[index] = UInt8(truncatingIfNeeded: serial &+ UInt64(index) &* 31) }
        return value
    }

    /// The model's push; `replace` is BPF_EXIST. Returns the dropped value and the errno.
    func modelPush(_ value: [UInt8], replace: Bool) -> ([UInt8]?, Int32) {
        if model.count == capacity {
            guard replace else { return (nil, E2BIG) }
            let dropped = model.removeFirst()
            model.append(value)
            return (dropped, 0)
        }
        model.append(value)
        return (nil, 0)
    }

    func modelGet(delete: Bool) -> [UInt8]? {
        guard !model.isEmpty else { return nil }
        let value = isStack ? model[model.count - 1] : model[0]
        if delete {
            if isStack { model.removeLast() } else { model.removeFirst() }
        }
        return value
    }

    /// Push flags as Linux checks them: BPF_NOEXIST or anything above BPF_EXIST is EINVAL.
    func pushFlagsValid(_ raw: UInt64) -> Bool { raw & 1 == 0 && raw <= 2 }

    func step(_ input: inout FuzzInput) {
        let operation = input.byte() % 14
        switch operation {
        case 0: userPush(0)
        case 1: userPush(2)
        case 2: userPush(input.pick([0, 1, 2, 3, 4, 6, 8]) { $0.u64() })
        case 3: userGet(pops: true)
        case 4: userGet(pops: false)
        case 5: helperPush(input.pick([0, 0, 2, 2, 1, 4, 3]))
        case 6: helperGet(pops: true)
        case 7: helperGet(pops: false)
        case 8: delete()
        case 9: nextKey()
        case 10: freeze()
        case 11: batch()
        case 12: wrongSizes(larger: input.bool())
        default: popWithFlags(input.pick([4, 1, 8]))
        }
    }

    /// User push through `exchange` (which reports what a BPF_EXIST push dropped).
    func userPush(_ raw: UInt64) {
        let value = nextValue()
        var displaced = [UInt8](repeating: 0xEE, count: size)
        var dropped = false
        let got = code {
            try value.withUnsafeBytes { bytes in
                try displaced.withUnsafeMutableBytes { out in
                    dropped = try map.exchange(key: noKey, value: bytes, flags: MapUpdateFlags(rawValue: raw), into: out)
                }
            }
        }
        var expected: Int32 = 0
        var expectedDrop: [UInt8]? = nil
        if !userWrite { expected = EPERM }
        else if !pushFlagsValid(raw) { expected = EINVAL }
        else { (expectedDrop, expected) = modelPush(value, replace: raw == 2) }
        expect("push(flags \(raw))", got, expected)
        if got == 0 {
            fuzzCheck(dropped == (expectedDrop != nil), "push(flags \(raw)) reported dropped \(dropped)")
            if let expectedDrop { fuzzCheck(displaced == expectedDrop, "push(BPF_EXIST) reported the wrong dropped value") }
        }
    }

    func userGet(pops: Bool) {
        var out = [UInt8](repeating: 0xEE, count: size)
        let got = code {
            try out.withUnsafeMutableBytes { bytes in
                if pops { try map.pop(into: bytes) } else { try map.peek(into: bytes) }
            }
        }
        var expected: Int32 = EPERM
        var value: [UInt8]? = nil
        if userRead && (!pops || userWrite) {
            value = modelGet(delete: pops)
            expected = value == nil ? ENOENT : 0
        }
        expect(pops ? "pop" : "peek", got, expected)
        if let value { fuzzCheck(out == value, "\(pops ? "pop" : "peek") returned the wrong value") }
        if expected != 0 { fuzzCheck(out.allSatisfy { $0 == 0xEE }, "a failed user \(pops ? "pop" : "peek") wrote the buffer") }
    }

    func helperPush(_ raw: UInt64) {
        let value = nextValue()
        let got = code {
            try value.withUnsafeBytes { bytes in
                try Epoch.withSection { (section) throws(MapError) in
                    try map.push(bytes, flags: MapUpdateFlags(rawValue: raw), in: section)
                }
            }
        }
        var expected: Int32 = EACCES
        if programWrite { expected = pushFlagsValid(raw) ? modelPush(value, replace: raw == 2).1 : EINVAL }
        expect("helper push(flags \(raw))", got, expected)
    }

    /// Helper pop / peek: an empty map zeroes the buffer.
    func helperGet(pops: Bool) {
        var out = [UInt8](repeating: 0xEE, count: size)
        let got = code {
            try out.withUnsafeMutableBytes { bytes in
                try Epoch.withSection { (section) throws(MapError) in
                    if pops { try map.pop(into: bytes, in: section) } else { try map.peek(into: bytes, in: section) }
                }
            }
        }
        let what = pops ? "helper pop" : "helper peek"
        if pops, !programWrite {
            expect(what, got, EACCES)
        } else if let value = modelGet(delete: pops) {
            expect(what, got, 0)
            fuzzCheck(out == value, "\(what) returned the wrong value")
        } else {
            expect(what, got, ENOENT)
            fuzzCheck(out.allSatisfy { $0 == 0 }, "\(what) of an empty map left the buffer unzeroed")
        }
    }

    /// Delete: EPERM without write access, else EINVAL; helper mode EACCES / EINVAL.
    func delete() {
        expect("delete", code { try map.delete(key: noKey) }, userWrite ? EINVAL : EPERM)
        let helper = code { try Epoch.withSection { (section) throws(MapError) in try map.delete(key: noKey, in: section) } }
        expect("helper delete", helper, programWrite ? EINVAL : EACCES)
    }

    func nextKey() {
        var next = [UInt8](repeating: 0, count: 8)
        let got = code { try next.withUnsafeMutableBytes { bytes in try map.nextKey(after: nil, into: bytes) } }
        expect("get-next-key", got, userRead ? EINVAL : EPERM)
    }

    func freeze() {
        let got = code { try map.freeze() }
        expect("freeze", got, userWrite ? 0 : EPERM)
        if got == 0 { frozen = true }
        fuzzCheck(map.isFrozen == frozen, "isFrozen is \(map.isFrozen), model \(frozen)")
    }

    /// Batches: the access checks, then ENOTSUPP.
    func batch() {
        var keys = [UInt8](repeating: 0, count: 8)
        var values = [UInt8](repeating: 0, count: size)
        let got = code {
            _ = try keys.withUnsafeMutableBytes { k in
                try values.withUnsafeMutableBytes { v in
                    try map.lookupAndDeleteBatch(from: nil, keys: k, values: v, count: 1, elementFlags: [], flags: 0)
                }
            }
        }
        expect("lookup-and-delete batch", got, userRead && userWrite ? 524 : EPERM)
    }

    /// A wrong-sized value buffer, and a non-empty key: EINVAL after the access checks.
    func wrongSizes(larger: Bool) {
        let wrongSize = larger ? size + 1 : size - 1
        var out = [UInt8](repeating: 0, count: wrongSize)
        let got = code { try out.withUnsafeMutableBytes { bytes in try map.peek(into: bytes) } }
        expect("peek into \(wrongSize) bytes", got, userRead ? EINVAL : EPERM)
        let value = nextValue()
        let key = [UInt8](repeating: 1, count: 4)
        let keyed = code {
            try key.withUnsafeBytes { key in
                try value.withUnsafeBytes { bytes in try map.update(key: key, value: bytes, flags: .any) }
            }
        }
        expect("push with a 4-byte key", keyed, userWrite ? EINVAL : EPERM)
    }

    /// Pop with flags: BPF_F_LOCK passes the first check (then EPERM or EINVAL); others EINVAL.
    func popWithFlags(_ raw: UInt64) {
        var out = [UInt8](repeating: 0, count: size)
        let got = code {
            try out.withUnsafeMutableBytes { bytes in
                try map.lookupAndDelete(key: noKey, into: bytes, flags: MapElementFlags(rawValue: raw))
            }
        }
        expect("pop(flags \(raw))", got, raw != 4 ? EINVAL : userRead && userWrite ? EINVAL : EPERM)
    }
}
