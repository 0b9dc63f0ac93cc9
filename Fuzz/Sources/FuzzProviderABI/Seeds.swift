import FuzzSupport

/// The seed corpus (`FuzzProviderABI --write-seeds Corpus/FuzzProviderABI`): valid
/// registrations on each base (transforming and not), each kind of malformed registration,
/// a duplicate, and callbacks that fail.
func providerABISeeds() -> [(String, [UInt8])] {
    var seeds: [(String, [UInt8])] = []
    // Registration fields are selectors into the lists of Target.swift: index 0 is the
    // well-formed value. Presence: 0 = all but pre-deletion, 1 = all but post-deletion.
    func registration(mode: UInt8 = 0x20, size: UInt8 = 0, version: UInt8 = 0, type: UInt8 = 0, base: UInt8,
                      transforms: UInt8 = 0, reserved: UInt8 = 0, dispatchSize: UInt8 = 0,
                      dispatchVersion: UInt8 = 0, presence: UInt8 = 0) -> [UInt8] {
        [mode, size, version, type, base, transforms, reserved, dispatchSize, dispatchVersion, presence]
    }
    // A map: key 4 bytes, value 4 bytes; a behaviour (14 selectors: create result, stored
    // size, NULL context, associate, find trigger and result, addition trigger and result,
    // pre-deletion trigger and result, client calls, allocation size, tag, nesting), quiet
    // by default (create 0, stored size preset, a context, no trigger, no client call);
    // 8 entries; the program-type byte.
    func quietMap(isArray: Bool, behavior: [UInt8]? = nil) -> [UInt8] {
        var bytes: [UInt8] = [0, 0]
        if isArray { bytes.append(1) }
        bytes += behavior ?? [0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        bytes += [7, 0x42]
        return bytes
    }
    let operations: [UInt8] = [1, 1, 0x11, 0, 1, 2, 0x12, 0, 1, 3, 0x13, 1, 0, 1, 0, 0x90, 3, 2, 4, 3, 5, 0,
                               6, 1, 8, 4, 0x14, 0, 9, 4, 11, 14, 1, 5, 0x15, 0, 11,
                               // batches through the callbacks: update 4, a lookup pass in
                               // steps, delete 2, lookup-and-delete; an exchange; a whole pass
                               25, 4, 0x20, 0x21, 0x01, 0x10, 1, 2, 3, 4, 0, 0, 0, 1,
                               23, 2, 1, 0, 0, 0, 23, 0, 1, 0, 0, 0, 26, 2, 1, 0, 1, 1, 0, 0, 0, 1,
                               24, 2, 2, 0, 0, 0, 19, 0x20, 0x17, 0, 30, 1, 1, 27, 1, 1, 2, 3, 4, 0, 2, 0, 11]
    for (base, name) in [(UInt8(0), "lockfree"), (1, "bucket"), (2, "array")] {
        let isArray = base == 2
        seeds.append(("seed-identity-\(name)",
                      [0] + registration(base: base) + quietMap(isArray: isArray) + operations))
        // Transforming: stored size = value + 8 (the token layout of provider.c).
        seeds.append(("seed-transform-\(name)",
                      [0] + registration(base: base, transforms: 1)
                      + quietMap(isArray: isArray, behavior: [0, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]) + operations))
    }
    seeds.append(("seed-identity-bucket-pre-deletion",
                  [0] + registration(base: 1, presence: 1) + quietMap(isArray: false) + operations))
    // Malformed: NULL registration, NULL dispatch, short registration, short table,
    // version 0, reserved set, bad base, both deletion callbacks, type out of range.
    seeds.append(("seed-null-registration", [0] + registration(mode: 31, base: 0)))
    seeds.append(("seed-null-dispatch", [0] + registration(mode: 30, base: 0)))
    seeds.append(("seed-short-registration", [0] + registration(size: 7, base: 0)))
    seeds.append(("seed-short-dispatch", [0] + registration(base: 0, dispatchSize: 9)))
    seeds.append(("seed-absurd-sizes", [0] + registration(size: 9, base: 0, dispatchSize: 11) + quietMap(isArray: false)
                  + operations))
    seeds.append(("seed-version-zero", [0] + registration(version: 4, base: 0)))
    seeds.append(("seed-reserved", [0] + registration(base: 0, reserved: 6)))
    seeds.append(("seed-bad-base", [0] + registration(base: 6)))
    seeds.append(("seed-both-deletions", [0] + registration(base: 1, presence: 6)))
    seeds.append(("seed-type-out-of-range", [0] + registration(type: 7, base: 0)))
    seeds.append(("seed-lockfree-pre-deletion", [0] + registration(base: 0, presence: 1)))
    // Two registrations of one type: EEXIST; the first one's map still works.
    seeds.append(("seed-duplicate", [1] + registration(base: 0) + registration(base: 1) + quietMap(isArray: false)
                  + operations))
    // Failing callbacks: create refuses (ENOMEM), create picks an absurd stored size, find /
    // addition / pre-deletion fail on key or value byte 0x01 with a negative errno, client
    // services called from every callback.
    seeds.append(("seed-create-fails", [0] + registration(base: 1) + quietMap(isArray: false,
                  behavior: [7, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])))
    seeds.append(("seed-absurd-stored-size", [0] + registration(base: 1, transforms: 1) + quietMap(isArray: false,
                  behavior: [0, 9, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])))
    seeds.append(("seed-failing-callbacks", [0] + registration(base: 1, presence: 1) + quietMap(isArray: false,
                  behavior: [0, 0, 1, 3, 4, 2, 4, 3, 4, 1, 0x0F, 3, 0, 3]) + operations + [1, 6, 0x01, 0, 3, 1, 4, 1]))
    seeds.append(("seed-transform-client-calls", [0] + registration(base: 2, transforms: 1) + quietMap(isArray: true,
                  behavior: [0, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0x0F, 2, 0, 4]) + operations))
    return seeds
}
