/*
 * C glue for the RCUMaps fuzz targets.
 *
 * 1. The driver (driver.c): the Swift entry point of every target calls rcf_main, which
 *    hands argc/argv to libFuzzer's LLVMFuzzerRunDriver when the binary was linked with
 *    -sanitize=fuzzer, and otherwise (or with --replay) runs the callback once per input
 *    file, so that a plain `swift build` gives working regression replayers.
 *
 * 2. A custom map provider written against the C ABI (provider.c, rcumaps_provider.h),
 *    whose behaviour the fuzz input chooses: which callbacks exist, what they return,
 *    which client services they call. It checks every argument RCUMaps passes it and
 *    aborts (a crash libFuzzer keeps) when the library breaks the contract: a wrong size,
 *    a stored value it never produced, a value deleted twice, a flag out of place.
 *    This header does not include rcumaps_provider.h: Swift sees plain integers.
 */
#ifndef CFUZZSUPPORT_H
#define CFUZZSUPPORT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- driver ---- */

typedef int (*rcf_callback_t)(const uint8_t *data, size_t size);

/* Runs a fuzz target. `--replay PATH...`: the callback once per file (a directory: each
 * regular file in it, by name), then returns 0. Otherwise: LLVMFuzzerRunDriver(argc, argv)
 * when libFuzzer is linked in; without it, a message and 2. */
int rcf_main(int argc, char **argv, rcf_callback_t callback);

/* 1 when libFuzzer is linked in (built with -sanitize=fuzzer). */
int rcf_fuzzer_linked(void);

/* Writes `size` bytes to `path` (seed corpus generation). 0 or errno. */
int rcf_write_file(const char *path, const uint8_t *data, size_t size);

/* Pins the calling thread to the CPU it runs on (sched_setaffinity), saving its former
 * affinity for rcf_unpin: that CPU, or -1 when the thread could not be pinned (it may then
 * move at any time). One pin at a time per process (the fuzz targets run on one thread). */
int rcf_pin_to_current_cpu(void);

/* Gives the thread back the affinity rcf_pin_to_current_cpu saved. */
void rcf_unpin(void);

/* ---- the C provider ---- */

/* Callback slots of rcumaps_provider_dispatch_table_t, in order (bits of `present`). */
enum {
    FZP_CB_CREATE = 1u << 0,
    FZP_CB_MAP_DELETE = 1u << 1,
    FZP_CB_ASSOCIATE = 1u << 2,
    FZP_CB_FIND = 1u << 3,
    FZP_CB_ADDITION = 1u << 4,
    FZP_CB_PRE_DELETION = 1u << 5,
    FZP_CB_POST_DELETION = 1u << 6,
    FZP_CB_ALL = 0x7Fu,
};

/* Client services a callback exercises (bits of fzp_behavior_t.client_calls). */
enum {
    FZP_CLIENT_FIND = 1u << 0,     /* find_element on its own map (and with NULLs: EINVAL) */
    FZP_CLIENT_ALLOCATE = 1u << 1, /* epoch allocate / allocate cache-aligned, write, free */
    FZP_CLIENT_NEST = 1u << 2,     /* epoch_enter / epoch_exit, nested, balanced */
    FZP_CLIENT_CONTEXT = 1u << 3,  /* map_context(NULL) and map_context(map) */
};

/* How the provider behaves; results are what a callback returns (0, a positive errno, or
 * anything else, which RCUMaps maps to an errno). A trigger of -1 never fires. */
typedef struct fzp_behavior {
    uint32_t transforms;            /* updates_original_value: stored = {token, checksum, payload} */
    int32_t create_result;
    uint32_t set_actual_value_size; /* else the preset (user) size is kept */
    uint32_t actual_value_size;
    uint32_t null_context;          /* create succeeds with a NULL map context */
    int32_t associate_result;
    int32_t find_trigger;           /* key[0] that makes find fail with find_result */
    int32_t find_result;
    int32_t addition_trigger;       /* value[0] that makes addition fail with addition_result */
    int32_t addition_result;
    int32_t pre_deletion_trigger;   /* key[0] that makes pre-deletion answer pre_deletion_result */
    int32_t pre_deletion_result;
    uint32_t client_calls;          /* FZP_CLIENT_* */
    uint64_t client_allocation_size;
    uint32_t client_allocation_tag;
    uint32_t client_nesting;        /* 0...8 */
    uint32_t find_element_may_be_denied; /* the map is BPF_F_WRONLY_PROG: find_element may be EACCES */
} fzp_behavior_t;

typedef struct fzp_stats {
    int64_t creates;           /* create callbacks that succeeded */
    int64_t map_deletes;
    int64_t live_contexts;     /* contexts created and not yet deleted */
    int64_t finds;             /* find callbacks that succeeded */
    int64_t additions;         /* addition callbacks that succeeded */
    int64_t deletions;         /* deletion callbacks (of the one kind present) */
    int64_t deletions_update;
    int64_t deletions_cleanup;
    int64_t deletions_helper;
    int64_t deletions_refused; /* pre-deletion refusals of explicit deletes */
    int64_t live_tokens;       /* stored values produced and not yet deleted */
    int64_t client_calls;      /* client services called from callbacks */
} fzp_stats_t;

typedef struct fzp_binding fzp_binding_t;

/* A binding (the registration's binding_context): behaviour, statistics, value tokens. */
fzp_binding_t *fzp_binding_create(const fzp_behavior_t *behavior);
void fzp_binding_set_behavior(fzp_binding_t *binding, const fzp_behavior_t *behavior);
fzp_stats_t fzp_binding_stats(const fzp_binding_t *binding);
/* Zeroes the statistics and the token table (call between inputs, with no map alive). */
void fzp_binding_reset(fzp_binding_t *binding);
/* What the next callbacks may see: helper mode (HELPER on every flag set), teardown
 * (MAP_CLEANUP deletions only). */
void fzp_binding_set_phase(fzp_binding_t *binding, int helper, int teardown);
/* While set, a find of a value whose deletion was already reported is accepted (the
 * exchange operation translates the value it displaced after its deletion callback ran);
 * a second deletion of it still aborts. */
void fzp_binding_allow_stale_finds(fzp_binding_t *binding, int allow);
void fzp_binding_destroy(fzp_binding_t *binding);

/* A dispatch table in a heap block of exactly `allocated` bytes (at least 8), with the
 * given version and size fields and the callbacks in `present` (FZP_CB_*), so that
 * AddressSanitizer sees any read past what the caller provided. Free with free(). */
void *fzp_dispatch_create(uint32_t version, uint32_t size, size_t allocated, uint32_t present);
/* Replaces every callback in a table with one that aborts: RCUMaps copies the table at
 * registration and must never call through the caller's copy afterwards. */
void fzp_dispatch_poison(void *table, size_t allocated);

/* A registration in a heap block of exactly `allocated` bytes (at least 8). */
void *fzp_registration_create(uint32_t version, uint32_t size, size_t allocated, uint32_t map_type,
                              uint32_t base_map, uint32_t updates_original_value, uint32_t reserved,
                              const void *dispatch, fzp_binding_t *binding);

/* rcumaps_register_provider(registration, want_client ? &client : NULL). On success with a
 * client table, checks its header and keeps it for the callbacks. */
int fzp_register(const void *registration, int want_client);
int fzp_unregister(uint32_t map_type);

/* Tells the map's context (through the client table's map_context) which handle is its
 * map, so that callbacks can call find_element on it. 0, or ENOENT for a NULL context. */
int fzp_attach_map(const void *map_handle);
/* find_element outside any epoch (must be EINVAL). `key` has the map's key size. */
int fzp_find_outside_epoch(const void *map_handle, const uint8_t *key);
/* epoch_exit with no epoch_enter (known defect 2; only called when that class is included). */
void fzp_unbalanced_epoch_exit(void);
/* The client table is known (some registration asked for it). */
int fzp_have_client(void);

/* The maximum block size the epoch allocator serves (EpochMemory.maxBlockSize). */
#define FZP_MAX_BLOCK_SIZE (4294967295ull - 128ull)

#ifdef __cplusplus
}
#endif

#endif /* CFUZZSUPPORT_H */
