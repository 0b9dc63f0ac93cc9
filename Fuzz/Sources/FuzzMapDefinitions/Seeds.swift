import FuzzSupport

/// The seed corpus (`FuzzMapDefinitions --write-seeds Corpus/FuzzMapDefinitions`): a valid
/// definition of each type, each validation rule of Linux 6.18 broken once (and the limits
/// met exactly), each creation flag, lock words.
func mapDefinitionSeeds() -> [(String, [UInt8])] {
    // Selectors into the lists of Target.swift.
    // type: 0 hash, 3 array, 6 reserved (3), 9 ID 0, 12 unregistered custom 4096, 13 object
    //   map (bucket), 16 C transform (lock-free), 18 C transform (array), 19 C identity,
    //   22 Swift (bucket), 24 65535, 26 QUEUE, 27 STACK, 28 PERCPU_ARRAY, 29 PERCPU_HASH,
    //   30 LPM_TRIE, 31 LRU_PERCPU_HASH.
    // key/value size: 0 zero, 1 -1, 2 1, 3 2, 4 4, 5 8, 6 16, 8 512, 9 513, 12 2^32, 13 Int.max;
    //   key also: 20 (4 MiB − 48) − 8, 21 (4 MiB − 48) − 5; value also: 17 9, 18 4096,
    //   19 4 MiB − 49, 20 4 MiB − 48, 23 INT_MAX, 24 INT_MAX + 1.
    // maxEntries: 0 zero, 1 -5, 2 1, 5 64, 6 1000, 8 2^20, 9 2^32-1, 10 2^32, 15 2^27, 16 2^27 + 1.
    // flags: 0 none, 3 NO_PREALLOC, 5 CLONE, 6 RDONLY, 7 WRONLY, 8 RDONLY|WRONLY, 9 RDONLY_PROG,
    //   10 WRONLY_PROG, 11 both _PROG, 13 ZERO_SEED, 15 MMAPABLE, 16 MMAPABLE|RDONLY,
    //   19 INNER_MAP, 20 NUMA_NODE, 21 STACK_BUILD_ID, 23 an unknown bit.
    // lock word: 0 none, 3 offset 0, 5 4, 6 8, 7 value − 4, 9 value, 10 −4, 11 2, 12 Int.max.
    func definition(type: UInt8, key: UInt8 = 5, value: UInt8 = 5, entries: UInt8 = 5, flags: UInt8 = 0,
                    name: [UInt8] = [4, 3, 2], numa: UInt8 = 0, bucket: UInt8 = 0, tag: UInt8 = 0, lock: UInt8 = 0,
                    operations: [UInt8] = [1, 1, 0x11, 0, 1, 2, 0x12, 0, 0, 1, 16, 1, 2, 19, 3, 0x13, 0, 3, 1, 4, 2,
                                           25, 3, 4, 5, 6, 7, 8, 9, 0, 0, 0, 1, 23, 2, 1, 0, 0, 0, 5, 0, 21, 0,
                                           30, 1, 1, 20, 1, 2, 3, 11]) -> [UInt8] {
        [type, key, value, entries, flags, UInt8(name.count)] + name + [numa, bucket, tag, lock] + operations
    }
    // Pushes (0 ANY, 1 EXIST, 2 fuzzed flags + selector), pops and peeks (3, 4), helper push
    // (5 + selector), pop and peek (6, 7), delete (8), get-next-key (9), freeze (10), batch
    // (11), wrong sizes and keys (12 + a byte), pop with flags (13 + selector).
    let queueOperations: [UInt8] = [0, 1, 1, 4, 3, 5, 2, 6, 7, 2, 3, 1, 5, 0, 8, 9, 11, 12, 1, 13, 0,
                                    13, 1, 10, 0, 3, 5, 0, 6, 7, 3]
    return [
        ("seed-hash-lockfree", definition(type: 0)),
        ("seed-hash-bucket", definition(type: 0, bucket: 1)),
        ("seed-array", definition(type: 3, key: 4)),
        ("seed-array-odd-values", definition(type: 3, key: 4, value: 17, entries: 6)),
        ("seed-hash-key-513", definition(type: 0, key: 9, value: 18)),
        ("seed-reserved-type", definition(type: 6)),
        ("seed-type-zero", definition(type: 9)),
        ("seed-unregistered-custom", definition(type: 12)),
        ("seed-object-map", definition(type: 13, key: 4, value: 4)),
        ("seed-c-transform", definition(type: 16, value: 15)),
        ("seed-c-identity", definition(type: 19, value: 6)),
        ("seed-swift-provider", definition(type: 22)),
        ("seed-type-65535", definition(type: 24)),
        ("seed-zero-key", definition(type: 0, key: 0)),
        ("seed-negative-value", definition(type: 0, value: 1)),
        ("seed-zero-entries", definition(type: 0, entries: 0)),
        ("seed-negative-entries", definition(type: 3, key: 4, entries: 1)),
        // Hash limits: key + value under 4 MiB − 48 (just under, at), at most 2^27 entries.
        ("seed-hash-key-plus-value-under", definition(type: 0, key: 21, value: 4, entries: 2, operations: [])),
        ("seed-hash-key-plus-value-at", definition(type: 0, key: 20, value: 5)),
        ("seed-hash-key-plus-value-at-limit-1-byte-key", definition(type: 0, key: 2, value: 19, entries: 2, operations: [])),
        ("seed-hash-value-past-limit", definition(type: 0, key: 2, value: 20)),
        ("seed-hash-entries-2-27", definition(type: 0, entries: 15, operations: [])),
        ("seed-hash-entries-past-2-27", definition(type: 0, entries: 16)),
        ("seed-entries-2-32", definition(type: 0, entries: 10)),
        ("seed-zero-key-huge-value", definition(type: 0, key: 0, value: 20)),
        // Arrays: values up to INT_MAX; storage past 4 GiB is allowed, a size past Int.max is ENOMEM.
        ("seed-array-int-max-value", definition(type: 3, key: 4, value: 23, entries: 2)),
        ("seed-array-value-past-int-max", definition(type: 3, key: 4, value: 24)),
        ("seed-array-size-overflows", definition(type: 3, key: 4, value: 23, entries: 9)),
        ("seed-array-4gib", definition(type: 3, key: 4, value: 18, entries: 8)),
        ("seed-array-key-8", definition(type: 3, key: 5)),
        // Flags, per type.
        ("seed-array-no-prealloc", definition(type: 3, key: 4, flags: 3)),
        ("seed-hash-no-prealloc", definition(type: 0, flags: 3)),
        ("seed-clone", definition(type: 0, flags: 5)),
        ("seed-unknown-flag", definition(type: 0, flags: 23)),
        ("seed-stack-build-id", definition(type: 0, flags: 21)),
        ("seed-hash-rdonly", definition(type: 0, flags: 6)),
        ("seed-array-wronly", definition(type: 3, key: 4, flags: 7)),
        ("seed-rdonly-and-wronly", definition(type: 0, flags: 8)),
        ("seed-hash-rdonly-prog", definition(type: 0, flags: 9, bucket: 1)),
        ("seed-array-wronly-prog", definition(type: 3, key: 4, flags: 10)),
        ("seed-both-prog", definition(type: 3, key: 4, flags: 11)),
        ("seed-hash-zero-seed", definition(type: 0, flags: 13, bucket: 1)),
        ("seed-array-zero-seed", definition(type: 3, key: 4, flags: 13)),
        ("seed-array-mmapable", definition(type: 3, key: 4, value: 17, flags: 15,
                                           operations: [29, 1, 1, 29, 4, 3, 0x66, 29, 2, 3, 20, 1, 29, 5, 0, 20, 1, 11])),
        ("seed-array-mmapable-rdonly", definition(type: 3, key: 4, flags: 16, operations: [29, 0, 1, 29, 0, 0, 29, 2, 1])),
        ("seed-hash-mmapable", definition(type: 0, flags: 15)),
        ("seed-custom-array-mmapable", definition(type: 18, key: 4, flags: 15)),
        ("seed-array-inner-map", definition(type: 3, key: 4, flags: 19)),
        ("seed-numa-flag", definition(type: 0, flags: 20)),
        ("seed-custom-rdonly", definition(type: 19, value: 6, flags: 6)),
        // Lock words: inside the value, misaligned, past it, with the program access flags,
        // on a custom map, on an mmapable array.
        ("seed-hash-lock-word", definition(type: 0, value: 5, lock: 5)),
        ("seed-array-lock-word", definition(type: 3, key: 4, value: 17, lock: 3)),
        ("seed-lock-word-at-the-end", definition(type: 0, value: 17, bucket: 1, lock: 7)),
        ("seed-lock-word-misaligned", definition(type: 0, lock: 11)),
        ("seed-lock-word-past-the-value", definition(type: 0, lock: 9)),
        ("seed-lock-word-negative", definition(type: 0, lock: 10)),
        ("seed-lock-word-huge", definition(type: 0, lock: 12)),
        ("seed-lock-word-rdonly-prog", definition(type: 0, flags: 9, lock: 3)),
        ("seed-lock-word-custom", definition(type: 19, value: 6, lock: 3)),
        ("seed-lock-word-mmapable", definition(type: 3, key: 4, flags: 15, lock: 3)),
        // The name is checked after the size limits (and the allocation).
        ("seed-long-name", definition(type: 0, name: [UInt8](repeating: 7, count: 16))),
        ("seed-bad-name", definition(type: 0, name: [0xF0])),
        ("seed-bad-name-and-too-big", definition(type: 0, key: 2, value: 20, name: [0xF0])),
        // A custom map on an array base refused for its name after the base's allocation:
        // the provider sees no teardown of its entries (the C provider stopped the run).
        ("seed-custom-array-bad-name", definition(type: 21, key: 4, value: 5, entries: 5, name: [0xF0])),
        ("seed-custom-transform-array-bad-name", definition(type: 18, key: 4, value: 5, entries: 5, name: [0xF0])),
        ("seed-numa-out-of-range", definition(type: 3, key: 4, numa: 6)),
        ("seed-custom-bad-size", definition(type: 13, key: 4, value: 5)),
        // QUEUE and STACK: valid ones run queue operations (opcodes of exerciseQueueStack).
        ("seed-queue", definition(type: 26, key: 0, entries: 2, operations: queueOperations)),
        ("seed-stack", definition(type: 27, key: 0, entries: 2, operations: queueOperations)),
        ("seed-queue-odd-values", definition(type: 26, key: 0, value: 17, entries: 5, operations: queueOperations)),
        ("seed-stack-4-mib-values", definition(type: 27, key: 0, value: 22, entries: 2, operations: [0, 3])),
        ("seed-queue-rdonly-prog", definition(type: 26, key: 0, entries: 2, flags: 9, operations: queueOperations)),
        ("seed-stack-wronly", definition(type: 27, key: 0, entries: 2, flags: 7, operations: queueOperations)),
        ("seed-queue-rdonly", definition(type: 26, key: 0, entries: 2, flags: 6, operations: queueOperations)),
        ("seed-stack-key-4", definition(type: 27, key: 4)),
        ("seed-queue-zero-value", definition(type: 26, key: 0, value: 0)),
        ("seed-queue-value-past-kmalloc", definition(type: 26, key: 0, value: 23)),
        ("seed-stack-entries-2-32", definition(type: 27, key: 0, entries: 10)),
        ("seed-queue-entries-2-32-minus-1", definition(type: 26, key: 0, entries: 9)),
        ("seed-stack-no-prealloc", definition(type: 27, key: 0, flags: 3)),
        ("seed-queue-both-prog", definition(type: 26, key: 0, flags: 11)),
        ("seed-stack-lock-word", definition(type: 27, key: 0, lock: 3)),
        ("seed-queue-bad-name-and-too-big", definition(type: 26, key: 0, value: 23, name: [0xF0])),
        // PERCPU_ARRAY: created and dropped (its operations are PerCPUArrayMapTests').
        ("seed-percpu-array", definition(type: 28, key: 4, operations: [])),
        ("seed-percpu-array-odd-values", definition(type: 28, key: 4, value: 17, entries: 6, operations: [])),
        ("seed-percpu-array-4096-values", definition(type: 28, key: 4, value: 18, operations: [])),
        ("seed-percpu-array-key-8", definition(type: 28, operations: [])),
        ("seed-percpu-array-mmapable", definition(type: 28, key: 4, flags: 15, operations: [])),
        ("seed-percpu-array-inner-map", definition(type: 28, key: 4, flags: 19, operations: [])),
        ("seed-percpu-array-numa-flag", definition(type: 28, key: 4, flags: 20, operations: [])),
        ("seed-percpu-array-numa-node", definition(type: 28, key: 4, numa: 3, operations: [])),
        ("seed-percpu-array-rdonly", definition(type: 28, key: 4, flags: 6, operations: [])),
        ("seed-percpu-array-int-max", definition(type: 28, key: 4, value: 23, operations: [])),
        ("seed-percpu-array-lock-word", definition(type: 28, key: 4, lock: 3, operations: [])),
        ("seed-percpu-array-lock-word-rdonly-prog", definition(type: 28, key: 4, flags: 9, lock: 3, operations: [])),
        ("seed-percpu-array-entries-2-32", definition(type: 28, key: 4, entries: 10, operations: [])),
        // The types whose creation rules the model does not encode: created and dropped
        // (a refusal must carry an errno), each with a definition Linux accepts and one it refuses.
        ("seed-percpu-hash", definition(type: 29, operations: [])),
        ("seed-percpu-hash-numa-node", definition(type: 29, numa: 3, operations: [])),
        ("seed-lpm-trie", definition(type: 30, key: 6, flags: 3, operations: [])),
        ("seed-lpm-trie-preallocated", definition(type: 30, key: 6, operations: [])),
        ("seed-lru-percpu-hash", definition(type: 31, operations: [])),
        ("seed-lru-percpu-hash-no-prealloc", definition(type: 31, flags: 3, operations: [])),
    ]
}
