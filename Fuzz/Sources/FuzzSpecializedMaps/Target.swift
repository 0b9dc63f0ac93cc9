import FuzzSupport
import RCUMaps

/// FuzzSpecializedMaps: a sequence of operations on one map of a type beyond HASH and ARRAY
/// — PERCPU_ARRAY, PERCPU_HASH, LRU_HASH, LRU_PERCPU_HASH, QUEUE, STACK, LPM_TRIE — checked
/// against a model of that type after every operation (its own file in this folder).
///
/// Input: a 4-byte header — the kind (byte % 7), a variant byte (bit 0: `NO_COMMON_LRU`
/// for the LRU types, `NO_PREALLOC` for PERCPU_HASH; bits 1–3: the key size, or an LPM
/// trie's data size), the value size, the capacity — then operations of 8 bytes each
/// (``OperationFrame``).
enum SpecializedKind: Int, CaseIterable {
    case perCPUArray, perCPUHash, lruHash, lruPerCPUHash, queue, stack, lpmTrie

    var type: MapType {
        switch self {
        case .perCPUArray: .perCPUArray
        case .perCPUHash: .perCPUHash
        case .lruHash: .lruHash
        case .lruPerCPUHash: .lruPerCPUHash
        case .queue: .queue
        case .stack: .stack
        case .lpmTrie: .lpmTrie
        }
    }
}

let specializedKeySizes = [1, 4, 8, 12, 3, 16, 2, 32]
let lpmDataSizes = [4, 16, 1, 2, 3, 5, 8, 20]
let specializedValueSizes = [1, 2, 4, 7, 8, 9, 16, 24, 64]

func makeSpecializedMapsTarget() -> FuzzTarget {
    FuzzTarget(name: "FuzzSpecializedMaps", seeds: specializedMapSeeds) { input in
        runSpecializedMap(&input)
    }
}

/// The definition a header asks for (every one of them valid).
func specializedDefinition(kind: SpecializedKind, variant: UInt8, valueByte: UInt8, capacityByte: UInt8) -> MapDefinition {
    let sizeIndex = Int(variant >> 1) & 7
    let valueSize = specializedValueSizes[Int(valueByte) % specializedValueSizes.count]
    let maxEntries = 1 + Int(capacityByte) % 16
    var flags: MapCreationFlags = []
    var keySize = specializedKeySizes[sizeIndex]
    switch kind {
    case .perCPUArray:
        keySize = 4
    case .perCPUHash:
        if variant & 1 != 0 { flags.insert(.noPrealloc) }
    case .lruHash, .lruPerCPUHash:
        if variant & 1 != 0 { flags.insert(.noCommonLRU) }
    case .queue, .stack:
        keySize = 0
    case .lpmTrie:
        keySize = 4 + lpmDataSizes[sizeIndex]
        flags.insert(.noPrealloc)
    }
    return MapDefinition(type: kind.type, keySize: keySize, valueSize: valueSize, maxEntries: maxEntries, flags: flags,
                         name: "fuzz_special", hashImplementation: .bucketLocked)
}

func runSpecializedMap(_ input: inout FuzzInput) {
    let kind = SpecializedKind(rawValue: Int(input.byte()) % SpecializedKind.allCases.count)!
    let definition = specializedDefinition(kind: kind, variant: input.byte(), valueByte: input.byte(),
                                           capacityByte: input.byte())
    trace("input: \(kind) keySize \(definition.keySize) valueSize \(definition.valueSize) "
        + "maxEntries \(definition.maxEntries) flags \(definition.flags)")
    let map: any RawMap
    do {
        map = try MapRegistry.create(definition)
    } catch {
        fuzzFail("creating \(kind) (\(definition)) failed: \(error)")
    }
    let step: (inout OperationFrame) -> Void
    let checkCount: () -> Void
    switch map {
    case let map as RawQueueStackMap:
        let exercise = QueueStackExercise(map: map)
        (step, checkCount) = (exercise.step, exercise.checkCount)
    case let map as RawLPMTrieMap:
        let exercise = LPMTrieExercise(map: map)
        (step, checkCount) = (exercise.step, exercise.checkCount)
    case let map as RawPerCPUArrayMap:
        let exercise = PerCPUArrayExercise(map: map)
        // An array holds every index: its count is its capacity.
        (step, checkCount) = (exercise.step, { fuzzCheck(map.count == definition.maxEntries, "PERCPU_ARRAY count \(map.count)") })
    default:
        let exercise = HashFamilyExercise(map: map)
        (step, checkCount) = (exercise.step, exercise.checkCount)
    }
    for _ in 0..<OperationFrame.limit {
        guard var frame = OperationFrame.next(&input) else { break }
        step(&frame)
        checkCount()
    }
}
