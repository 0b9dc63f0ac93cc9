import RCUMaps
#if canImport(Glibc)
import Glibc
#endif

/// Input classes the fuzz targets do not generate while the library defects they hit are
/// being fixed. Each one is a switch: set `RCUMAPS_FUZZ_INCLUDE_KNOWN_DEFECTS` to a
/// comma-separated list of the numbers below (or `all`) to generate those inputs again, and
/// the targets then expect the fixed behaviour; once the fix has landed, make the class
/// always on (docs/fuzzing.md lists them too).
///
/// Fixed, and always generated now (the numbers are not reused):
/// 1. `epoch_allocate_with_tag` / `epoch_allocate_cache_aligned_with_tag` with a size of
///    2^63 or more: NULL (FuzzProviderABI).
/// 2. `epoch_exit()` without `epoch_enter()` from a C provider: ignored, later sections work
///    (FuzzProviderABI).
/// 3. A provider callback writing to its own map from `preprocessElementDeletion`: EDEADLK,
///    and the outer operation completes (FuzzMapOperations' Swift provider on the bucket base).
/// 4. The last reference to a bucket-locked map dropped inside a section holding a
///    `lookupInPlace` pointer: the pointer stays readable until the section ends
///    (FuzzMapOperations).
/// 5. `MapRegistry.create` of custom types slowing down and overflowing the stack after
///    some 20,000–40,000 creations: every custom map is created through it again.
/// 6. A lookup-and-delete batch on a custom map that meets an element the provider refuses
///    after removing others in the same call: it stops there with `count` = the elements it
///    removed and returns them (it answered `count` 0, and they were lost).
/// 7. A `MapDefinition.lockOffset` of `Int.max - 3`: EINVAL (the validation trapped on
///    `offset + 4`).
/// 8. A `BPF_F_MMAPABLE` array whose values hold a lock word and are wider than 8 bytes:
///    values stored whole (they went through an 8-byte local: a stack buffer overflow).
///
/// Open: none.
public enum KnownDefects {
    /// The classes switched on by `RCUMAPS_FUZZ_INCLUDE_KNOWN_DEFECTS` (numbers, or `all` for
    /// every open class). A new class gets a number above 8 and a switch here, read where the
    /// targets generate its inputs.
    static let included: Set<Int> = {
        guard let raw = getenv("RCUMAPS_FUZZ_INCLUDE_KNOWN_DEFECTS") else { return [] }
        let text = String(cString: raw)
        if text == "all" { return open }
        return Set(text.split(separator: ",").compactMap { Int(String($0).trimmingCharacters(in: " ")) })
    }()

    /// The numbers of the classes still excluded.
    static let open: Set<Int> = []
}

/// Creates a map as users do, through `MapRegistry.create` (custom types too: known
/// defect 5 is fixed).
public func createMap(_ definition: MapDefinition) -> Result<any RawMap, MapError> {
    attempt { () throws(MapError) in try MapRegistry.create(definition) }
}

extension String {
    func trimmingCharacters(in set: Character) -> String {
        var text = Substring(self)
        while text.first == set { text = text.dropFirst() }
        while text.last == set { text = text.dropLast() }
        return String(text)
    }
}
