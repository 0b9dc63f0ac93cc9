import RCUMaps
import RCUMapsTestSupport
import Testing

@Suite("ARRAY semantics")
struct ArrayMapSemanticsTests {
    func makeArray(valueSize: Int = 8, maxEntries: Int = 16, tag: PoolTag = uniqueTag()) throws -> any RawMap {
        try MapRegistry.create(MapDefinition(type: .array, keySize: 4, valueSize: valueSize,
                                             maxEntries: maxEntries, poolTag: tag))
    }

    @Test func valuesStartZeroAndCountIsMaxEntries() throws {
        let array = try makeArray()
        #expect(array.count == 16)
        for index: UInt32 in 0..<16 { #expect(try array.get(index, as: UInt64.self) == 0) }
    }

    @Test func updateAndLookup() throws {
        let array = try makeArray()
        try array.put(UInt32(3), UInt64(33))
        try array.put(UInt32(3), UInt64(34), flags: .exist)
        #expect(try array.get(UInt32(3), as: UInt64.self) == 34)
        #expect(array.count == 16)
    }

    @Test func outOfRangeLookupIsENOENTAndUpdateIsE2BIG() throws {
        let array = try makeArray()
        #expect(throws: MapError.keyNotFound) { try array.get(UInt32(16), as: UInt64.self) }
        #expect(throws: MapError.keyNotFound) { try array.get(UInt32.max, as: UInt64.self) }
        #expect(throws: MapError.outOfSpace) { try array.put(UInt32(16), UInt64(1)) }
        #expect(throws: MapError.outOfSpace) { try array.put(UInt32.max, UInt64(1)) }
    }

    @Test func noExistIsEEXIST() throws {
        let array = try makeArray()
        #expect(throws: MapError.alreadyExists) { try array.put(UInt32(0), UInt64(1), flags: .noExist) }
        #expect(try array.get(UInt32(0), as: UInt64.self) == 0)
    }

    @Test func deleteIsEINVALAndLookupAndDeleteIsUnsupported() throws {
        let array = try makeArray()
        try array.put(UInt32(1), UInt64(5))
        #expect(throws: MapError.invalidArgument) { try array.remove(UInt32(1)) }
        #expect(throws: MapError.unsupportedByMapType) { try array.take(UInt32(1), as: UInt64.self) }   // ENOTSUPP (524), as Linux
        #expect(try array.get(UInt32(1), as: UInt64.self) == 5)
    }

    @Test func invalidFlagsAndSizesAreEINVAL() throws {
        let array = try makeArray()
        #expect(throws: MapError.invalidArgument) { try array.put(UInt32(0), UInt64(1), flags: MapUpdateFlags(rawValue: 7)) }
        #expect(throws: MapError.invalidArgument) { try array.put(UInt64(0), UInt64(1)) }   // 8-byte key
        #expect(throws: MapError.invalidArgument) { try array.put(UInt32(0), UInt32(1)) }   // 4-byte value
        #expect(throws: MapError.invalidArgument) { try array.get(UInt16(0), as: UInt64.self) }
    }

    @Test func iterationFollowsLinux() throws {
        let array = try makeArray(maxEntries: 5)
        #expect(try array.allKeys(as: UInt32.self) == [0, 1, 2, 3, 4])
        #expect(try array.next(after: UInt32(4)) == nil)
        #expect(try array.next(after: UInt32(77), linuxRule: true) == 0)  // get-next-key: an out-of-range cursor restarts
        #expect(try array.next(after: UInt32(2)) == 3)
        // A pass never restarts: nothing follows an index beyond the last (it restarted at
        // 0, so a resumed pass returned every index again: found by review, 2026-12-05).
        var next: UInt32 = 0
        for map in [array as any RawMap,
                    try MapRegistry.create(MapDefinition(type: .perCPUArray, keySize: 4, valueSize: 8, maxEntries: 5))] {
            for beyond: UInt32 in [5, 77, .max] {
                #expect(throws: MapError.keyNotFound) {
                    try withUnsafeBytes(of: beyond) { key in
                        try withUnsafeMutableBytes(of: &next) { try map.nextKeyInPass(after: key, into: $0) }
                    }
                }
            }
            try withUnsafeBytes(of: UInt32(2)) { key in
                try withUnsafeMutableBytes(of: &next) { try map.nextKeyInPass(after: key, into: $0) }
            }
            #expect(next == 3)
        }
    }

    @Test(arguments: [1, 7, 8, 9, 24, 100])
    func valuesOfEverySizeRoundTrip(valueSize: Int) throws {
        let array = try makeArray(valueSize: valueSize, maxEntries: 10)
        for index in 0..<10 {
            let value = (0..<valueSize).map { UInt8(truncatingIfNeeded: index * 17 + $0) }
            try withUnsafeBytes(of: UInt32(index)) { key in
                try value.withUnsafeBytes { try array.update(key: key, value: $0, flags: .any) }
            }
        }
        for index in 0..<10 {
            let expected = (0..<valueSize).map { UInt8(truncatingIfNeeded: index * 17 + $0) }
            #expect(try array.get(bytes: withUnsafeBytes(of: UInt32(index)) { Array($0) }) == expected)
        }
    }

    @Test func helperModeWritesInPlace() throws {
        let array = try makeArray(valueSize: 16)
        try withUnsafeBytes(of: UInt32(2)) { key in
            try Epoch.withSection { section throws(MapError) in
                let value = try array.lookupInPlace(key: key, in: section)
                #expect(value.count == 16)
                value.storeBytes(of: UInt64(0xAB), toByteOffset: 8, as: UInt64.self)
            }
            #expect(throws: MapError.keyNotFound) {
                try withUnsafeBytes(of: UInt32(99)) { outOfRange in
                    try Epoch.withSection { section throws(MapError) in
                        _ = try array.lookupInPlace(key: outOfRange, in: section)
                    }
                }
            }
        }
        let stored = try array.get(bytes: withUnsafeBytes(of: UInt32(2)) { Array($0) })
        #expect(stored[8] == 0xAB)
    }

    @Test func storageIsCacheAlignedAndReclaimed() throws {
        let tag = uniqueTag()
        do {
            let array = try makeArray(valueSize: 24, maxEntries: 1000, tag: tag)
            try withUnsafeBytes(of: UInt32(0)) { key in
                try Epoch.withSection { section throws(MapError) in
                    let value = try array.lookupInPlace(key: key, in: section)
                    // Slot 0's value follows its 8-byte sequence word at the aligned base.
                    #expect((Int(bitPattern: value.baseAddress) - 8) % 64 == 0)
                }
            }
            #expect(EpochMemory.statistics(for: tag).liveBytes >= 1000 * 32)
        }
        #expect(settledStatistics(for: tag).liveBytes == 0)
    }
}

@Suite("Map definitions and the registry")
struct MapDefinitionTests {
    @Test func zeroSizesAndCapacityAreEINVAL() {
        for implementation in HashImplementation.allCases {
            for (key, value, entries) in [(0, 8, 1), (8, 0, 1), (8, 8, 0), (-1, 8, 1), (8, 8, -5)] {
                #expect(throws: MapError.invalidArgument) {
                    try MapRegistry.create(MapDefinition(type: .hash, keySize: key, valueSize: value,
                                                         maxEntries: entries, hashImplementation: implementation))
                }
            }
        }
        #expect(throws: MapError.invalidArgument) {
            try MapRegistry.create(MapDefinition(type: .array, keySize: 4, valueSize: 0, maxEntries: 1))
        }
        #expect(throws: MapError.invalidArgument) {
            try MapRegistry.create(MapDefinition(type: .array, keySize: 4, valueSize: 8, maxEntries: 0))
        }
    }

    @Test func arrayKeysMustBeFourBytes() {
        for keySize in [1, 2, 8] {
            #expect(throws: MapError.invalidArgument) {
                try MapRegistry.create(MapDefinition(type: .array, keySize: keySize, valueSize: 8, maxEntries: 4))
            }
        }
    }

    /// Linux 6.18's limits: a hash refuses keySize + valueSize from 4 MiB − 48 bytes and
    /// more than 2^27 entries (E2BIG), with no limit of its own on the key; an array refuses
    /// values over INT_MAX (E2BIG); zero sizes are EINVAL first.
    @Test func oversizedKeysAndValuesAreE2BIG() throws {
        for implementation in HashImplementation.allCases {
            func hash(_ keySize: Int, _ valueSize: Int, _ maxEntries: Int = 4) throws(MapError) -> any RawMap {
                try MapRegistry.create(MapDefinition(type: .hash, keySize: keySize, valueSize: valueSize,
                                                     maxEntries: maxEntries, hashImplementation: implementation))
            }
            // Keys over Linux's old 512-byte limit are accepted, up to the sum.
            for keySize in [513, 4096, 65_535] { _ = try hash(keySize, 8) }
            #expect(throws: MapError.outOfSpace) { try hash(8, MapDefinition.maxHashKeyPlusValueSize - 8) }
            _ = try hash(8, MapDefinition.maxHashKeyPlusValueSize - 9, 1)
            #expect(throws: MapError.outOfSpace) { try hash(8, 4 << 20) }
            #expect(throws: MapError.outOfSpace) { try hash(8, 8, MapDefinition.maxHashEntries + 1) }
            // Zero sizes (EINVAL) come before oversized ones (E2BIG).
            #expect(throws: MapError.invalidArgument) { try hash(0, 4 << 20) }
        }
        #expect(throws: MapError.outOfSpace) {
            try MapRegistry.create(MapDefinition(type: .array, keySize: 4, valueSize: Int(Int32.max) + 1, maxEntries: 1))
        }
        // A 4 MiB + 1 array value is fine (Linux has no 4 MiB cap on array values).
        _ = try MapRegistry.create(MapDefinition(type: .array, keySize: 4, valueSize: (4 << 20) + 1, maxEntries: 1))
    }

    @Test func flagsNamesAndNUMANodesAreChecked() throws {
        #expect(throws: MapError.invalidArgument) {
            try MapRegistry.create(MapDefinition(type: .hash, keySize: 8, valueSize: 8, maxEntries: 4,
                                                 flags: MapCreationFlags(rawValue: 1 << 9)))
        }
        #expect(throws: MapError.invalidArgument) {
            try MapRegistry.create(MapDefinition(type: .array, keySize: 4, valueSize: 8, maxEntries: 4, flags: .noPrealloc))
        }
        _ = try MapRegistry.create(MapDefinition(type: .hash, keySize: 8, valueSize: 8, maxEntries: 4, flags: .noPrealloc))
        #expect(throws: MapError.invalidArgument) {
            try MapRegistry.create(MapDefinition(type: .hash, keySize: 8, valueSize: 8, maxEntries: 4,
                                                 name: "a-name-that-is-far-too-long"))
        }
        #expect(throws: MapError.invalidArgument) {
            try MapRegistry.create(MapDefinition(type: .hash, keySize: 8, valueSize: 8, maxEntries: 4, name: "bad name"))
        }
        _ = try MapRegistry.create(MapDefinition(type: .hash, keySize: 8, valueSize: 8, maxEntries: 4, name: "flows_v4.x"))
        #expect(throws: MapError.invalidArgument) {
            try MapRegistry.create(MapDefinition(type: .array, keySize: 4, valueSize: 8, maxEntries: 4,
                                                 numaNode: NUMATopology.nodeCount))
        }
        let placed = try MapRegistry.create(MapDefinition(type: .array, keySize: 4, valueSize: 8, maxEntries: 4, numaNode: 0))
        try placed.put(UInt32(1), UInt64(9))
        #expect(try placed.get(UInt32(1), as: UInt64.self) == 9)
    }

    @Test func typeIDSpace() {
        #expect(MapType(rawValue: 4096).isCustom)
        #expect(MapType(rawValue: 65535).isCustom)
        #expect(!MapType(rawValue: 4095).isCustom)
        #expect(MapType.hash.linuxTypeID == 1)
        #expect(MapType.lruHash.linuxTypeID == 9)
        #expect(MapType.ringBuffer.linuxTypeID == 27)
        #expect(MapType(rawValue: 5000).linuxTypeID == nil)
        #expect(MapType(rawValue: 5000).description == "CUSTOM(5000)")
    }

    @Test func customTypesWithoutAProviderAreRefusedClearly() {
        do {
            _ = try MapRegistry.create(MapDefinition(type: MapType(rawValue: 4096), keySize: 4, valueSize: 4, maxEntries: 1))
            Issue.record("creating an unregistered custom type succeeded")
        } catch {
            #expect(error == .invalidArgument)
            #expect(error.reason?.contains("no provider") == true)
        }
        for raw: UInt32 in [0, 65536, 3000] {
            #expect(throws: MapError.invalidArgument) {
                try MapRegistry.create(MapDefinition(type: MapType(rawValue: raw), keySize: 4, valueSize: 4, maxEntries: 1))
            }
        }
        #expect(throws: MapError.notSupported) {
            try MapRegistry.create(MapDefinition(type: .hashOfMaps, keySize: 4, valueSize: 4, maxEntries: 1))
        }
    }

    @Test func errorsCarryTheirErrno() {
        #expect(MapError.keyNotFound.code == 2)
        #expect(MapError.alreadyExists.code == 17)
        #expect(MapError.outOfSpace.code == 7)
        #expect(MapError.invalidArgument.code == 22)
        #expect(MapError.notSupported.code == 95)
        #expect(MapError.noMemory.code == 12)
        #expect(MapError.busy.code == 16)
        #expect(MapError.permissionDenied.code == 1)
        #expect(MapError.invalidArgument.with(reason: "x") == .invalidArgument)
        #expect("\(MapError.outOfSpace.with(reason: "full"))" == "E2BIG: full")
    }
}
