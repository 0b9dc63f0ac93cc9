import CFuzzSupport
import FuzzSupport
import RCUMaps
#if canImport(Glibc)
import Glibc
#endif

/// FuzzProviderABI: the C ABI of rcumaps_provider.h, from the provider's side.
///
/// Each input registers up to three providers with fuzzed registration and dispatch tables —
/// NULL or short tables (in heap blocks of exactly the declared size, so AddressSanitizer
/// sees any read past it), absurd sizes and versions, missing or conflicting callbacks,
/// out-of-range type IDs and base maps, duplicates — and checks each answer against the
/// rules of rcumaps_provider.h. For each provider that registered, it creates a map whose
/// callbacks follow a fuzzed behaviour (create failing or choosing absurd stored sizes, NULL
/// contexts, find / addition / pre-deletion returning errors, negative errnos, INT_MIN,
/// client services called from inside callbacks) and runs operations on it against the
/// reference model. Then it unregisters everything (EBUSY while a map lives).
func makeTarget() -> FuzzTarget {
    FuzzTarget(name: "FuzzProviderABI", settleEvery: 512, seeds: providerABISeeds) { input in
        runProviderABI(&input)
    }
}

/// Type IDs the inputs register (a small set, so that duplicates happen).
let typeBase: UInt32 = 60000
let version1DispatchSize: UInt32 = 64  // {version, size} + 7 callbacks
let version1RegistrationSize: UInt32 = 40
/// The largest stored value the provider layer accepts (EINVAL beyond).
let maxValueSize = MapDefinition.maxValueSize

struct Registered {
    let type: UInt32
    let base: UInt32
    let transforms: Bool
    let present: UInt32
    let binding: OpaquePointer
}

func runProviderABI(_ input: inout FuzzInput) {
    var registered: [Registered] = []
    var tables: [(UnsafeMutableRawPointer, Int)] = []
    var bindings: [OpaquePointer] = []
    defer {
        for (table, _) in tables { free(table) }
        for binding in bindings { fzp_binding_destroy(binding) }
    }
    let attempts = 1 + Int(input.byte() % 3)
    for attempt in 0..<attempts {
        if let provider = register(&input, attempt: attempt, registered: registered, tables: &tables, bindings: &bindings) {
            registered.append(provider)
        }
    }
    for provider in registered where !input.isExhausted {
        exerciseMap(&input, provider)
    }
    if fzp_have_client() != 0, input.byte() & 1 == 1 {
        // A stray epoch_exit (known defect 2, fixed): ignored, and sections still work.
        fzp_unbalanced_epoch_exit()
        fuzzCheck(!Epoch.isActive, "a stray epoch_exit left the thread inside a section")
    }
    for provider in registered {
        let result = fzp_unregister(provider.type)
        fuzzCheck(result == 0, "unregistering type \(provider.type) with no map left: \(errnoName(result))")
        let again = fzp_unregister(provider.type)
        fuzzCheck(again == ENOENT, "unregistering type \(provider.type) twice: \(errnoName(again)), expected ENOENT")
    }
}

// MARK: Registration

/// Presence sets: the valid shapes and typical mistakes (bits: FZP_CB_*).
let presenceChoices: [UInt32] = [
    0x5F,  // all but pre-deletion (post only)
    0x3F,  // all but post-deletion (pre only)
    0x47,  // required + post
    0x27,  // required + pre
    0x4F,  // required + find + post
    0x57,  // required + addition + post
    0x7F,  // both deletion callbacks: refused
    0x07,  // no deletion callback: refused
    0x5E,  // no create: refused
    0x5D,  // no map delete: refused
    0x5B,  // no associate: refused
]

func register(_ input: inout FuzzInput, attempt: Int, registered: [Registered],
              tables: inout [(UnsafeMutableRawPointer, Int)], bindings: inout [OpaquePointer]) -> Registered? {
    let mode = input.byte()
    let nullRegistration = mode % 32 == 31
    let nullDispatch = mode % 32 == 30
    let wantClient = mode & 0x20 != 0
    let poison = mode & 0x40 != 0
    let registrationSize: UInt32 = input.pick([40, 40, 40, 40, 48, 0, 8, 39, 41, 0xFFFF_FFFF]) { UInt32($0.byte()) }
    let registrationVersion: UInt32 = input.pick([1, 1, 1, 1, 0, 2, 0xFFFF_FFFF])
    let type: UInt32 = input.pick([typeBase, typeBase + 1, typeBase + 2, typeBase, typeBase + 1, 4096, 65535, 4095, 0,
                                   65536, 0xFFFF_FFFF]) { $0.u32() }
    let base: UInt32 = input.pick([1, 2, 3, 1, 2, 3, 0, 4]) { $0.u32() }
    let updatesOriginalValue: UInt32 = input.pick([0, 1, 0, 1, 2, 0xFFFF_FFFF])
    let reserved: UInt32 = input.pick([0, 0, 0, 0, 0, 0, 1]) { $0.u32() }
    let dispatchSize: UInt32 = input.pick([64, 64, 64, 64, 72, 0, 8, 16, 56, 63, 65, 0xFFFF_FFFF]) { UInt32($0.byte()) }
    let dispatchVersion: UInt32 = input.pick([1, 1, 1, 1, 1, 0, 2, 0xFFFF_FFFF])
    let presenceByte = input.byte()
    let present = presenceByte < 0xF0 ? presenceChoices[Int(presenceByte) % presenceChoices.count] : UInt32(presenceByte & 0x7F)
    let transforms = updatesOriginalValue != 0

    // The rules of rcumaps_provider.h and docs/custom-maps.md, in order; every refusal is
    // EINVAL except a duplicate type (EEXIST), which is checked last.
    var expected: Int32 = 0
    func has(_ bit: Int) -> Bool { present & UInt32(bit) != 0 }
    // (Versions other than 1 are refused, as the Swift API refuses a table version it does
    // not know: a later one was read as version 1 until 2026-12-05.)
    if nullRegistration || registrationSize < version1RegistrationSize || registrationVersion != 1 || reserved != 0
        || nullDispatch || !(1...3).contains(base) || dispatchSize < version1DispatchSize || dispatchVersion != 1
        || !(4096...65535).contains(type)
        || !has(FZP_CB_CREATE) || !has(FZP_CB_MAP_DELETE) || !has(FZP_CB_ASSOCIATE)
        || has(FZP_CB_PRE_DELETION) == has(FZP_CB_POST_DELETION)
        || (transforms && !(has(FZP_CB_FIND) && has(FZP_CB_ADDITION)))
        || (base == 1 && has(FZP_CB_PRE_DELETION)) {
        expected = EINVAL
    } else if registered.contains(where: { $0.type == type }) {
        expected = EEXIST
    }

    var behavior = CProvider.quietBehavior(transforms: transforms)
    let binding = fzp_binding_create(&behavior)!
    bindings.append(binding)
    // Blocks exactly as long as the caller declares (at least 8 bytes: the header itself);
    // an absurd declared size gets a whole table (RCUMaps reads at most what it knows).
    let dispatchBytes = dispatchSize <= 4096 ? max(Int(dispatchSize), 8) : Int(version1DispatchSize) + 8
    let table = fzp_dispatch_create(dispatchVersion, dispatchSize, dispatchBytes, present)!
    tables.append((table, dispatchBytes))
    let registrationBytes = registrationSize <= 4096 ? max(Int(registrationSize), 8) : Int(version1RegistrationSize) + 8
    let registration = fzp_registration_create(registrationVersion, registrationSize, registrationBytes, type, base,
                                               updatesOriginalValue, reserved, nullDispatch ? nil : UnsafeRawPointer(table),
                                               binding)!
    let result = fzp_register(nullRegistration ? nil : UnsafeRawPointer(registration), wantClient ? 1 : 0)
    // The registration is only read during the call: free it now (ASan: no later access).
    free(registration)
    trace("register #\(attempt): type \(type) base \(base) transforms \(transforms) present 0x\(String(present, radix: 16)) "
        + "sizes \(registrationSize)/\(dispatchSize) versions \(registrationVersion)/\(dispatchVersion) reserved \(reserved) "
        + "null \(nullRegistration)/\(nullDispatch) → \(errnoName(result)) (model: \(errnoName(expected)))")
    fuzzCheck(result == expected, "rcumaps_register_provider: \(errnoName(result)), expected \(errnoName(expected)) "
        + "(type \(type), base \(base), present 0x\(String(present, radix: 16)), transforms \(transforms), "
        + "sizes \(registrationSize)/\(dispatchSize), versions \(registrationVersion)/\(dispatchVersion), reserved \(reserved), "
        + "NULL registration \(nullRegistration), NULL dispatch \(nullDispatch))")
    guard result == 0 else { return nil }
    // RCUMaps copied the table: the caller's copy may change now without effect.
    if poison { fzp_dispatch_poison(table, dispatchBytes) }
    return Registered(type: type, base: base, transforms: transforms, present: present, binding: binding)
}

// MARK: A map of a registered provider

let errorResults: [Int32] = [0, EACCES, -EPERM, .min, .max, ENOENT, EINVAL, -1, EBUSY]

func behavior(_ input: inout FuzzInput, transforms: Bool, valueSize: Int) -> fzp_behavior_t {
    var behavior = CProvider.quietBehavior(transforms: transforms)
    behavior.create_result = input.pick([0, 0, 0, 0, 0, 0, EINVAL, ENOMEM, -EPERM, .min, .max, -1])
    // Stored sizes: the layouts of provider.c, tiny ones, megabytes (valid with any key this
    // target uses), one past the provider layer's limit, and absurd ones.
    let actual: UInt32? = input.pick([nil, nil, UInt32(valueSize + 8), UInt32(valueSize + 8), 8, 1, 4, 0,
                                      UInt32(maxValueSize - 1024), UInt32(maxValueSize + 1), .max]) { UInt32($0.u16()) }
    if let actual {
        behavior.set_actual_value_size = 1
        behavior.actual_value_size = actual
    }
    behavior.null_context = input.byte() % 8 == 0 ? 1 : 0
    behavior.associate_result = input.pick([0, 0, 0, EPERM, -EACCES, .min])
    func trigger(_ input: inout FuzzInput) -> Int32 { input.pick([-1, -1, -1, 0x00, 0x01, 0x10]) { Int32($0.byte()) } }
    behavior.find_trigger = trigger(&input)
    behavior.find_result = input.pick(errorResults)
    behavior.addition_trigger = trigger(&input)
    behavior.addition_result = input.pick(errorResults)
    behavior.pre_deletion_trigger = trigger(&input)
    behavior.pre_deletion_result = input.pick(errorResults)
    behavior.client_calls = UInt32(input.byte() & 0x0F)
    let hugeSize: UInt64 = FZP_MAX_BLOCK_SIZE + 1
    // Sizes of 2^63 and more (known defect 1, fixed): NULL, as any size past the largest block.
    behavior.client_allocation_size = input.pick([0, 1, 64, 4096, 65536, hugeSize, UInt64(UInt32.max), UInt64(Int64.max),
                                                  1 << 63, .max])
    behavior.client_allocation_tag = input.pick([FuzzTags.clientAllocations.rawValue, 0, 0xFFFF_FFFF])
    behavior.client_nesting = UInt32(input.byte() % 9)
    return behavior
}

func exerciseMap(_ input: inout FuzzInput, _ provider: Registered) {
    let binding = provider.binding
    let isArray = provider.base == 3
    // Key sizes a hash base accepts (the definition limits are FuzzMapDefinitions' business);
    // arrays refuse all but 4.
    var keySize: Int = input.pick([4, 4, 1, 8, 16, 100, 512])
    let valueSize: Int = input.pick([4, 4, 1, 8, 12, 64, 300])
    if isArray, input.byte() % 4 != 0 { keySize = 4 }
    var behavior = behavior(&input, transforms: provider.transforms, valueSize: valueSize)
    let stored = behavior.set_actual_value_size != 0 ? Int(behavior.actual_value_size) : valueSize
    // A stored value of megabytes: one entry is enough.
    let maxEntries = stored > 65536 ? 1 : 1 + Int(input.byte() % 32)
    fzp_binding_reset(binding)
    fzp_binding_set_behavior(binding, &behavior)
    let definition = MapDefinition(type: MapType(rawValue: provider.type), keySize: keySize, valueSize: valueSize,
                                   maxEntries: maxEntries, name: "abi", poolTag: FuzzTags.providerMaps)

    // What creation must answer: the create callback's result, then the stored size it
    // chose, then the base map's own checks of the definition.
    var expected: Int32 = 0
    if let error = mapCResult(behavior.create_result) {
        expected = error
    } else if stored == 0 || stored > maxValueSize || (!provider.transforms && stored != valueSize) {
        expected = EINVAL
    } else if isArray, keySize != 4 {
        expected = EINVAL
    }
    trace("create \(definition.type) key \(keySize) value \(valueSize) stored \(stored) max \(maxEntries) "
        + "(create \(behavior.create_result), null context \(behavior.null_context)); model: \(errnoName(expected))")
    guard expected == 0 else {
        let before = fzp_binding_stats(binding)
        let created = createMap(definition)
        switch created {
        case .failure(let error):
            fuzzCheck(error.code == expected, "creating a map of type \(provider.type): \(error), expected \(errnoName(expected)) "
                + "(key \(keySize), value \(valueSize), stored \(stored), create result \(behavior.create_result))")
        case .success:
            fuzzFail("creating a map of type \(provider.type) succeeded, expected \(errnoName(expected)) "
                + "(key \(keySize), value \(valueSize), stored \(stored), create result \(behavior.create_result))")
        }
        let after = fzp_binding_stats(binding)
        fuzzCheck(after.creates == after.map_deletes && after.live_contexts == 0,
                  "a refused map left its context behind (\(after.creates) creates, \(after.map_deletes) map deletes)")
        fuzzCheck(after.creates - before.creates <= 1, "one creation called create \(after.creates - before.creates) times")
        return
    }
    runOperations(&input, provider: provider, behavior: behavior, definition: definition, stored: stored)
}

/// Checks through the client table and the map's own API, from outside any callback.
func checkFromOutside(_ map: any RawMap, provider: Registered, behavior: fzp_behavior_t, programByte: UInt8) {
    guard let provided = map as? RawCustomMap else { fuzzFail("a custom map is not a RawCustomMap") }
    let handle = provided.cHandle
    if fzp_have_client() != 0 {
        let key = [UInt8](repeating: 0, count: provided.definition.keySize)
        let outside = key.withUnsafeBufferPointer { fzp_find_outside_epoch(handle, $0.baseAddress) }
        fuzzCheck(outside == EINVAL, "find_element outside an epoch: \(errnoName(outside)), expected EINVAL")
    }
    // Associating a program type: the provider's answer (a second association of an
    // accepted type is a no-op; a refused one asks again).
    let programType = ProgramType(bytes: [UInt8](repeating: programByte, count: 16))!
    let expected = mapCResult(behavior.associate_result)
    for _ in 0..<2 {
        switch attempt({ () throws(MapError) in try provided.associate(programType: programType) }) {
        case .success:
            fuzzCheck(expected == nil, "associate succeeded, the provider answered \(behavior.associate_result)")
        case .failure(let error):
            fuzzCheck(error.code == expected, "associate: \(error), the provider answered \(behavior.associate_result)")
        }
    }
    // Unregistering while the map exists: EBUSY.
    let busy = fzp_unregister(provider.type)
    fuzzCheck(busy == EBUSY, "unregistering type \(provider.type) while a map exists: \(errnoName(busy)), expected EBUSY")
}

func runOperations(_ input: inout FuzzInput, provider: Registered, behavior: fzp_behavior_t,
                   definition: MapDefinition, stored: Int) {
    let binding = provider.binding
    let rules = CProvider.rules(behavior, present: provider.present, storedSize: stored, userSize: definition.valueSize)
    var hooks = ExerciseHooks()
    let checks = CProviderChecks(binding: binding, transforms: provider.transforms, storedSize: stored,
                                 countsAdditions: provider.present & UInt32(FZP_CB_ADDITION) != 0)
    hooks.attach(checks)
    let attachContext = hooks.mapCreated
    let programByte = input.byte()
    hooks.mapCreated = { map in
        attachContext(map)
        checkFromOutside(map, provider: provider, behavior: behavior, programByte: programByte)
    }
    let isArray = provider.base == 3
    let exerciser = MapExerciser(
        makeMap: {
            switch createMap(definition) {
            case .success(let map): return map
            case .failure(let error): fuzzFail("creating a map of type \(provider.type): \(error), the model expects success")
            }
        },
        makeModel: {
            MapModel(base: isArray ? .array : provider.base == 2 ? .bucket : .lockFree, custom: true,
                     keySize: definition.keySize, valueSize: definition.valueSize, maxEntries: definition.maxEntries,
                     rules: rules)
        },
        hooks: hooks)
    exerciser.maxOperations = 48
    exerciser.run(&input)
}
