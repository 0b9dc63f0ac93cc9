/*
 * rcumaps_provider.h — the C ABI for RCUMaps custom map providers.
 *
 * A provider registers one custom map type ID (4096–65535) stored in a built-in
 * base map, and layers its semantics on it through the dispatch table below:
 * the design of eBPF-for-Windows custom maps (ebpf_base_map_provider_dispatch_table_t),
 * in userspace. The Swift API (RCUMapProviders: MapProviderRegistry,
 * MapProviderDispatchTable) is the same contract; docs/custom-maps.md explains it.
 *
 * Results: 0 on success, otherwise a positive Linux errno (EINVAL, ENOMEM,
 * EEXIST, EBUSY, EOPNOTSUPP, ...).
 *
 * Versioning: every table starts with {version, size}. RCUMaps refuses, with
 * EINVAL, a version it does not know (0, or above the *_VERSION constants below, as
 * the Swift API refuses a later MapProviderDispatchTable version) and a size below
 * the version-1 layout; of a larger table it reads the version-1 layout only.
 *
 * Threads: RCUMaps registers a thread with liburcu-memb at its first epoch_enter or
 * map operation that enters an epoch section (not every one does: an ARRAY's user-mode
 * read, for one, takes none). A thread your code registered with liburcu-memb itself must be
 * adopted first (rcumaps_adopt_registered_thread below); otherwise the process stops
 * with a message at that first call (liburcu cannot register a thread twice).
 */
#ifndef RCUMAPS_PROVIDER_H
#define RCUMAPS_PROVIDER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Callbacks that receive keys or values run inside an epoch; preprocess_map_create,
 * postprocess_map_delete and preprocess_associate_program_type do not (map delete may
 * run inside a section of the thread that dropped the map's last reference, or on the
 * reclamation thread; enter one yourself to read epoch-protected memory there). A callback returning a
 * value other than 0 fails; an errno (1 to 4095) is kept, a negative errno is read as
 * that errno, and any other value as EINVAL.
 *
 * Every callback must return to its caller: no longjmp, C++ exception or thread exit
 * across it. RCUMaps undoes on return what it set up around the call — a bucket's lock
 * (pre-deletion and lookup-and-delete find callbacks run under it), the epoch section,
 * the per-thread records that refuse re-entrant writes, a pending association — so a
 * callback left any other way leaves a chain locked and every grace period waiting. */

/* Operation flags passed to callbacks (same values as EBPF_MAP_OPERATION_*). */
#define RCUMAPS_MAP_OPERATION_HELPER 0x01u      /* from helper (program) mode */
#define RCUMAPS_MAP_OPERATION_UPDATE 0x02u      /* displaced by a replace, or a rollback; must not fail */
#define RCUMAPS_MAP_OPERATION_MAP_CLEANUP 0x04u /* map teardown; must not fail */
#define RCUMAPS_MAP_OPERATION_ROLLBACK 0x08u    /* with UPDATE: undoing an addition whose base
                                                   update failed (an RCUMaps extension) */

/* Base maps a custom type can be stored in. */
#define RCUMAPS_BASE_MAP_HASH_LOCK_FREE 1u
#define RCUMAPS_BASE_MAP_HASH_BUCKET_LOCKED 2u
#define RCUMAPS_BASE_MAP_ARRAY 3u

#define RCUMAPS_PROVIDER_DISPATCH_VERSION 1u
#define RCUMAPS_PROVIDER_REGISTRATION_VERSION 1u
#define RCUMAPS_CLIENT_DISPATCH_VERSION 1u

typedef int rcumaps_result_t;

/* Callbacks a provider implements. Required: preprocess_map_create,
 * postprocess_map_delete, preprocess_associate_program_type, exactly one of
 * preprocess_element_deletion (deprecated) / postprocess_element_deletion, and, with
 * updates_original_value, postprocess_find_element and preprocess_element_addition
 * (which translate stored and user values). A table without them is refused (EINVAL). */
typedef struct rcumaps_provider_dispatch_table {
    uint32_t version; /* RCUMAPS_PROVIDER_DISPATCH_VERSION */
    uint32_t size;    /* sizeof(rcumaps_provider_dispatch_table_t) */

    /* Before the base map is created: validate sizes, choose the stored value
     * size (*actual_value_size, preset to value_size) and return a per-map context. */
    rcumaps_result_t (*preprocess_map_create)(void *binding_context, uint32_t map_type, uint32_t key_size,
                                              uint32_t value_size, uint32_t max_entries,
                                              uint32_t *actual_value_size, void **map_context);
    /* After the map is destroyed (after every MAP_CLEANUP deletion): free the context. */
    void (*postprocess_map_delete)(void *binding_context, void *map_context);
    /* Before a program type (a 16-byte GUID) is associated with the map; may refuse.
     * The bytes are in the GUID's text order ("f1832a85-85d5-..." is f1 83 2a 85 85 d5
     * ...), not the little-endian memory layout of a Windows GUID struct, whose first
     * three fields are byte-swapped: a provider ported from eBPF-for-Windows that
     * compares with memcmp against such a struct must convert first. */
    rcumaps_result_t (*preprocess_associate_program_type)(void *binding_context, void *map_context,
                                                          const uint8_t program_type[16]);
    /* After a lookup found the stored value (in_value). With updates_original_value,
     * writes the user-visible value to out_value; otherwise out_value is NULL. For a
     * lookup-and-delete it runs on the entry being removed, before it leaves the map; a
     * failure leaves the map unchanged. On the lock-free base it runs again if another
     * thread replaced the key meanwhile (only its last run is for the entry removed):
     * keep it free of side effects. A failure with ENOENT hides the element: a lookup
     * reports ENOENT, and a batch skips the element (a lookup-and-delete batch leaves it
     * in the map). */
    rcumaps_result_t (*postprocess_find_element)(void *binding_context, void *map_context, size_t key_size,
                                                 const uint8_t *key, size_t in_value_size, const uint8_t *in_value,
                                                 size_t out_value_size, uint8_t *out_value, uint32_t flags);
    /* Before an update: with updates_original_value, translates the user value
     * (in_value) into the stored value (out_value); a failure aborts the update. */
    rcumaps_result_t (*preprocess_element_addition)(void *binding_context, void *map_context, size_t key_size,
                                                    const uint8_t *key, size_t in_value_size, const uint8_t *in_value,
                                                    size_t out_value_size, uint8_t *out_value, uint32_t flags);
    /* Deprecated: before a value leaves the map (bucket lock held; slot writer
     * exclusion on arrays); may refuse an explicit delete (flags without UPDATE /
     * MAP_CLEANUP). Refused (EINVAL) with RCUMAPS_BASE_MAP_HASH_LOCK_FREE, which has no
     * lock to run it under. */
    rcumaps_result_t (*preprocess_element_deletion)(void *binding_context, void *map_context, size_t key_size,
                                                    const uint8_t *key, size_t value_size, const uint8_t *value,
                                                    uint32_t flags);
    /* Preferred: after a value left the map and the lock was released; exactly once per value. */
    void (*postprocess_element_deletion)(void *binding_context, void *map_context, size_t key_size,
                                         const uint8_t *key, size_t value_size, const uint8_t *value, uint32_t flags);
} rcumaps_provider_dispatch_table_t;

typedef struct rcumaps_provider_registration {
    uint32_t version;                /* RCUMAPS_PROVIDER_REGISTRATION_VERSION */
    uint32_t size;                   /* sizeof(rcumaps_provider_registration_t) */
    uint32_t map_type;               /* 4096 ... 65535 */
    uint32_t base_map;               /* RCUMAPS_BASE_MAP_* */
    uint32_t updates_original_value; /* non-zero: stored values differ from user values */
    uint32_t reserved;               /* 0 */
    const rcumaps_provider_dispatch_table_t *dispatch; /* read once, while registering: the
                                                         * library keeps a copy of its first
                                                         * `size` bytes, so a later change to
                                                         * the table changes nothing */
    void *binding_context;           /* passed back to every callback */
} rcumaps_provider_registration_t;

/* Services RCUMaps offers providers (the client dispatch table). */
typedef struct rcumaps_client_dispatch_table {
    uint32_t version; /* RCUMAPS_CLIENT_DISPATCH_VERSION */
    uint32_t size;
    /* Looks `key` up in the base map of `map` and returns
     * the stored value in place. Call inside an epoch (EINVAL otherwise); *value is
     * valid until it ends. The callbacks that receive keys or values already run inside
     * one. It is the base map's helper-mode lookup: EACCES on a BPF_F_WRONLY_PROG map.
     * Inside a MAP_CLEANUP deletion callback and inside postprocess_map_delete (when the
     * map's base is already gone) it refuses (EINVAL) for every map, not only the one
     * being torn down: the calling thread is known to be in a teardown, not which map's.
     * `map` is the map's handle, which the Swift side hands out (RawCustomMap.cHandle):
     * the map object itself, unretained. It is valid only while Swift code holds a strong
     * reference to the map, and must not be used by one thread while another may be
     * dropping the last reference — keeping it in the map context until
     * postprocess_map_delete is not enough. */
    rcumaps_result_t (*find_element)(const void *map, const uint8_t *key, uint8_t **value);
    /* Enter / leave an epoch (nestable). An epoch_exit with no matching epoch_enter on
     * the calling thread is refused — also inside a callback, which runs in a section the
     * library entered (not the provider's to leave): it changes nothing and is reported
     * on stderr. */
    void (*epoch_enter)(void);
    void (*epoch_exit)(void);
    /* Epoch memory under `tag`; NULL when out of memory or for a size it cannot serve
     * (above 4,294,967,167 bytes — 4 GiB less 129 — (size_t)-1 included). epoch_allocate_with_tag's blocks are 8-byte
     * aligned only (not malloc's 16: a 24-byte header precedes them); for 16-byte types
     * (__int128, long double, 16-byte atomics) use the cache-aligned form (64). */
    void *(*epoch_allocate_with_tag)(size_t size, uint32_t tag);
    void *(*epoch_allocate_cache_aligned_with_tag)(size_t size, uint32_t tag);
    void (*epoch_free)(void *memory);
    void (*epoch_free_cache_aligned)(void *memory);
    /* The map context the provider returned for `map` (MAP_CONTEXT()); NULL inside a
     * MAP_CLEANUP deletion callback and inside postprocess_map_delete, for every map (as
     * find_element). */
    void *(*map_context)(const void *map);
} rcumaps_client_dispatch_table_t;

/* Registers a provider. *client (if not NULL) receives the client dispatch table, written
 * before the type can be used: a map of the type created on another thread as soon as the
 * registration takes effect finds it there, so a provider may pass the address of the
 * variable its callbacks read. The table is one constant of the process: a registration
 * that fails may write it too, and one that finds it there already leaves the variable
 * alone (the callbacks of the provider's other types may be reading it). Register the
 * first of a provider's types into one variable before registering others into it from
 * other threads: two first registrations at once both store to it, racing each other and
 * the callbacks' reads. EINVAL: bad arguments or tables; EEXIST: type registered. */
rcumaps_result_t rcumaps_register_provider(const rcumaps_provider_registration_t *registration,
                                           const rcumaps_client_dispatch_table_t **client);

/* Unregisters the provider of map_type. EBUSY while maps of the type exist — a map
 * exists from when its creation asks preprocess_map_create (a creation the map layer
 * refuses before that, for its sizes or flags, never counts) until its
 * postprocess_map_delete has returned, so an unregister from inside that
 * callback (or racing it) fails with EBUSY: unregister after the callback has returned. A
 * provider's own count of its maps, lowered inside the callback, reaches zero a little
 * before the library's: an unregister that follows it may still get EBUSY, and should try
 * again. ENOENT if none is registered. It removes
 * whichever provider holds map_type (there is no per-registration handle in C, unlike
 * Swift's MapProviderRegistration): call it once per successful registration, never
 * again after another provider may have registered the type. */
rcumaps_result_t rcumaps_unregister_provider(uint32_t map_type);

/* Declares that the calling thread is already registered with liburcu-memb by code
 * outside RCUMaps (urcu_memb_register_thread), so that RCUMaps uses that registration
 * instead of making its own; call it before the thread's first epoch_enter or map
 * operation (on a thread liburcu does not know, the process stops with a message). Before
 * your code unregisters the thread, call rcumaps_release_adopted_thread (outside any
 * epoch), and make no epoch_enter or map operation on the thread between the two: the
 * process stops with a message there. Neither call may be made inside a liburcu read lock
 * the thread holds (the process stops with a message), and the thread must end its own
 * read locks before it exits (a fork in progress would otherwise hang the process). The Swift API's
 * Epoch.adoptRegisteredThread() and Epoch.releaseAdoptedThread() are the same calls. */
void rcumaps_adopt_registered_thread(void);
void rcumaps_release_adopted_thread(void);

#ifdef __cplusplus
}
#endif

#endif /* RCUMAPS_PROVIDER_H */
