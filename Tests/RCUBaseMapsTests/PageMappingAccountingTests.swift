import Foundation
import RCUMaps
import Testing

/// `EpochMemory.mappedPageBytes` counts the page mappings maps hold, and returns to 0 once
/// they are dropped and a barrier has run — the fuzz targets' leak check relies on it (it
/// could not see a page-backed array that was never unmapped). In a process of its own: the
/// figure is process-wide, and other tests map pages meanwhile.
@Suite("Page mapping accounting")
struct PageMappingAccountingTests {
    @Test func pageBackedStorageIsCountedWhileItsMapLivesAndNotAfter() async {
        await #expect(processExitsWith: .success) {
            guard EpochMemory.mappedPageBytes == 0 else { exit(1) }
            // Storage on pages of its own: a BPF_F_MMAPABLE array.
            var mmapable: (any RawMap)? = try MapRegistry.create(
                MapDefinition(type: .array, keySize: 4, valueSize: 8, maxEntries: 1024, flags: .mmapable))
            let mapped = EpochMemory.mappedPageBytes
            guard mapped >= 8 * 1024 else { exit(2) }
            // An epoch block of 4 MiB or more is mapped too: an 8 MiB array.
            var large: (any RawMap)? = try MapRegistry.create(
                MapDefinition(type: .array, keySize: 4, valueSize: 8, maxEntries: 1 << 20))
            guard EpochMemory.mappedPageBytes >= mapped + 8 << 20 else { exit(3) }
            mmapable = nil
            large = nil
            await Epoch.barrier()
            guard EpochMemory.mappedPageBytes == 0, mmapable == nil, large == nil else { exit(4) }
            exit(0)
        }
    }
}
