/*
 * A custom map provider written in C against rcumaps_provider.h, driven by the fuzz input
 * (fzp_behavior_t) and checking everything RCUMaps hands it.
 *
 * Stored values of a transforming provider (updates_original_value) with a stored size S of
 * at least 8 bytes: {token u32, checksum u32, payload}, where the payload is the first
 * min(U, S - 8) bytes of the user's value (U bytes). Each addition makes a new token, so
 * the provider knows which stored values are in the map: a find of a token that is not
 * live, a deletion of a token twice, a checksum that does not match — each means RCUMaps
 * handed the provider a value it did not store, or reported one value twice — and abort.
 * One exception, which the harness announces (fzp_binding_allow_stale_finds): an exchange
 * translates the value it displaced with the find callback after its deletion was
 * reported, inside the same section (RawCustomMap.exchange documents it).
 * Token 0 with all bytes zero is an array slot never written (find: ENOENT). With S < 8
 * the stored value is the first min(S, U) bytes of the user value, and all zero means unset.
 *
 * Identity providers (no transform) store the user's value; their callbacks only count
 * and check sizes and flags.
 */
#include "CFuzzSupport.h"
#include "rcumaps_provider.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FZP_BINDING_MAGIC 0xB1DD1A6Eu
#define FZP_CONTEXT_MAGIC 0x0C047E47u
#define FZP_TOKENS 4096u /* additions per input: the targets stay far below */
/* Bytes of a stored value's payload that are checksummed (and checked for zero): stored
 * values can be megabytes, and a callback must stay cheap. */
#define FZP_CHECKED 512u
#define FZP_MAX_SCRATCH 4096u

struct fzp_binding {
    uint32_t magic;
    fzp_behavior_t behavior;
    fzp_stats_t stats;
    int helper;
    int teardown;
    int stale_finds; /* a find may translate a value whose deletion was just reported (exchange) */
    uint32_t next_token;
    uint8_t live[FZP_TOKENS]; /* 0: never stored, 1: in the map, 2: deleted */
    uint32_t sums[FZP_TOKENS];
};

struct fzp_context {
    uint32_t magic;
    fzp_binding_t *binding;
    const void *map;
    uint32_t key_size;
    uint32_t value_size;  /* user-visible */
    uint32_t stored_size; /* what the base map stores */
};

static const rcumaps_client_dispatch_table_t *client;

__attribute__((noreturn, format(printf, 1, 2))) static void fail(const char *format, ...);

static void fail(const char *format, ...)
{
    va_list arguments;
    va_start(arguments, format);
    fprintf(stderr, "\nFUZZ FAILURE (C provider): ");
    vfprintf(stderr, format, arguments);
    fprintf(stderr, "\n");
    va_end(arguments);
    abort();
}

static uint32_t checksum(const uint8_t *bytes, size_t count)
{
    uint32_t hash = 2166136261u;
    for (size_t index = 0; index < count; index++) hash = (hash ^ bytes[index]) * 16777619u;
    return hash | 1u;
}

/* Reads `count` bytes through memcpy, so that AddressSanitizer's interceptor checks that the
 * whole buffer RCUMaps passed is addressable (this C code itself is not instrumented). */
static void touch(const uint8_t *bytes, size_t count, const char *what)
{
    static _Thread_local uint8_t scratch[FZP_MAX_SCRATCH];
    if (count > (64u << 20)) fail("%s of %zu bytes passed to a callback", what, count);
    if (count && !bytes) fail("%s is NULL with size %zu", what, count);
    for (size_t offset = 0; offset < count; offset += FZP_MAX_SCRATCH) {
        size_t chunk = count - offset < FZP_MAX_SCRATCH ? count - offset : FZP_MAX_SCRATCH;
        memcpy(scratch, bytes + offset, chunk);
    }
}

static fzp_binding_t *binding_of(void *binding_context)
{
    fzp_binding_t *binding = binding_context;
    if (!binding || binding->magic != FZP_BINDING_MAGIC) fail("callback got a wrong binding context %p", binding_context);
    return binding;
}

static struct fzp_context *context_of(fzp_binding_t *binding, void *map_context)
{
    struct fzp_context *context = map_context;
    if (!context) {
        if (!binding->behavior.null_context) fail("callback got a NULL map context, but create returned one");
        return NULL;
    }
    if (context->magic != FZP_CONTEXT_MAGIC) fail("callback got a map context that is not live (%p)", map_context);
    if (context->binding != binding) fail("map context of another binding");
    return context;
}

/* Flags: what each callback may see, and the phase the Swift side announced. */
static void check_flags(const fzp_binding_t *binding, uint32_t flags, int deletion, const char *callback)
{
    uint32_t allowed = RCUMAPS_MAP_OPERATION_HELPER;
    if (deletion) allowed |= RCUMAPS_MAP_OPERATION_UPDATE | RCUMAPS_MAP_OPERATION_MAP_CLEANUP;
#ifdef RCUMAPS_MAP_OPERATION_ROLLBACK
    /* Headers that define it: ROLLBACK marks the UPDATE deletion that undoes an addition. */
    if (deletion) allowed |= RCUMAPS_MAP_OPERATION_ROLLBACK;
    if ((flags & RCUMAPS_MAP_OPERATION_ROLLBACK) && !(flags & RCUMAPS_MAP_OPERATION_UPDATE))
        fail("%s: ROLLBACK without UPDATE (flags 0x%x)", callback, flags);
#endif
    if (flags & ~allowed) fail("%s: unexpected flags 0x%x", callback, flags);
    int cleanup = (flags & RCUMAPS_MAP_OPERATION_MAP_CLEANUP) != 0;
    if (binding->teardown) {
        if (!deletion || !cleanup) fail("%s during map teardown with flags 0x%x", callback, flags);
        if (flags & RCUMAPS_MAP_OPERATION_HELPER) fail("%s: MAP_CLEANUP with HELPER", callback);
        return;
    }
    if (cleanup) fail("%s: MAP_CLEANUP while the map is alive", callback);
    int helper = (flags & RCUMAPS_MAP_OPERATION_HELPER) != 0;
    if (helper != binding->helper)
        fail("%s: HELPER flag %d in a %s-mode operation", callback, helper, binding->helper ? "helper" : "user");
}

static void check_key(const struct fzp_context *context, size_t key_size, const uint8_t *key, const char *callback)
{
    if (!key || key_size == 0) fail("%s: no key (%p, %zu)", callback, (const void *)key, key_size);
    if (context && key_size != context->key_size)
        fail("%s: key size %zu, the map's is %u", callback, key_size, context->key_size);
    touch(key, key_size, "key");
}

/* ---- tokens ---- */

static int stored_is_zero(const uint8_t *stored, size_t size)
{
    for (size_t index = 0; index < size; index++)
        if (stored[index]) return 0;
    return 1;
}

/* Checks a stored value of a transforming provider; returns its token (0: never written). */
static uint32_t check_stored(fzp_binding_t *binding, const uint8_t *stored, size_t size, const char *callback)
{
    if (size < 8) return 0;
    uint32_t token, sum;
    memcpy(&token, stored, 4);
    memcpy(&sum, stored + 4, 4);
    if (token == 0) {
        if (!stored_is_zero(stored, size < 8 + FZP_CHECKED ? size : 8 + FZP_CHECKED))
            fail("%s: a stored value with token 0 that is not all zero", callback);
        return 0;
    }
    if (token >= binding->next_token || token >= FZP_TOKENS || binding->live[token] != 1) {
        /* RawCustomMap.exchange translates the value it displaced with the find callback
         * after that value's deletion was reported (in the same section): allowed then only. */
        int stale = token < binding->next_token && token < FZP_TOKENS && binding->live[token] == 2 &&
                    binding->stale_finds && strcmp(callback, "find") == 0;
        if (!stale)
            fail("%s: stored value with token %u, which is not in the map (deleted, or never stored)", callback, token);
    }
    if (sum != binding->sums[token] || checksum(stored + 8, size - 8 < FZP_CHECKED ? size - 8 : FZP_CHECKED) != sum)
        fail("%s: stored value of token %u is corrupt (checksum)", callback, token);
    return token;
}

static void release_stored(fzp_binding_t *binding, const uint8_t *stored, size_t size, const char *callback)
{
    if (!binding->behavior.transforms) return;
    uint32_t token = check_stored(binding, stored, size, callback);
    if (token == 0) return;
    binding->live[token] = 2;
    binding->stats.live_tokens--;
}

/* ---- client services, exercised from callbacks ---- */

static void exercise_client(fzp_binding_t *binding, struct fzp_context *context, const uint8_t *key)
{
    const rcumaps_client_dispatch_table_t *table = client;
    uint32_t calls = binding->behavior.client_calls;
    if (!table || !calls || binding->teardown) return;
    binding->stats.client_calls++;
    if (calls & FZP_CLIENT_NEST) {
        uint32_t depth = binding->behavior.client_nesting > 8 ? 8 : binding->behavior.client_nesting;
        for (uint32_t level = 0; level < depth; level++) table->epoch_enter();
        for (uint32_t level = 0; level < depth; level++) table->epoch_exit();
    }
    if (calls & FZP_CLIENT_CONTEXT) {
        if (table->map_context(NULL) != NULL) fail("map_context(NULL) is not NULL");
        if (context && context->map && table->map_context(context->map) != context)
            fail("map_context(map) is not the map's context");
    }
    if ((calls & FZP_CLIENT_FIND) && context && context->map && key) {
        uint8_t *value = NULL;
        if (table->find_element(NULL, key, &value) != EINVAL) fail("find_element(NULL map) is not EINVAL");
        if (table->find_element(context->map, NULL, &value) != EINVAL) fail("find_element(NULL key) is not EINVAL");
        if (table->find_element(context->map, key, NULL) != EINVAL) fail("find_element(NULL value) is not EINVAL");
        table->epoch_enter();
        int result = table->find_element(context->map, key, &value);
        /* find_element goes through the base map's helper-mode lookup, which a
         * BPF_F_WRONLY_PROG map refuses (EACCES): undocumented, accepted only there. */
        int denied = result == EACCES && binding->behavior.find_element_may_be_denied;
        if (result != 0 && result != ENOENT && !denied) fail("find_element on its own map: %d", result);
        if (result == 0) {
            if (!value) fail("find_element succeeded with a NULL value");
            touch(value, context->stored_size, "find_element's value");
            if (binding->behavior.transforms) check_stored(binding, value, context->stored_size, "find_element");
        }
        table->epoch_exit();
    }
    if (calls & FZP_CLIENT_ALLOCATE) {
        uint64_t size = binding->behavior.client_allocation_size;
        uint32_t tag = binding->behavior.client_allocation_tag;
        int expect_null = size > FZP_MAX_BLOCK_SIZE;
        void *plain = table->epoch_allocate_with_tag((size_t)size, tag);
        if ((plain == NULL) != expect_null)
            fail("epoch_allocate_with_tag(%llu) returned %p", (unsigned long long)size, plain);
        if (plain) {
            memset(plain, 0xA5, (size_t)size);
            table->epoch_free(plain);
        }
        void *aligned = table->epoch_allocate_cache_aligned_with_tag((size_t)size, tag);
        if ((aligned == NULL) != expect_null)
            fail("epoch_allocate_cache_aligned_with_tag(%llu) returned %p", (unsigned long long)size, aligned);
        if (aligned) {
            if ((uintptr_t)aligned % 64) fail("cache-aligned block %p is not 64-byte aligned", aligned);
            memset(aligned, 0x5A, (size_t)size);
            table->epoch_free_cache_aligned(aligned);
        }
        table->epoch_free(NULL);
        table->epoch_free_cache_aligned(NULL);
    }
}

/* ---- callbacks ---- */

static rcumaps_result_t cb_create(void *binding_context, uint32_t map_type, uint32_t key_size, uint32_t value_size,
                                  uint32_t max_entries, uint32_t *actual_value_size, void **map_context)
{
    fzp_binding_t *binding = binding_of(binding_context);
    if (!actual_value_size || !map_context) fail("create: NULL out-parameter");
    if (binding->teardown) fail("create during teardown");
    if (map_type < 4096 || map_type > 65535) fail("create: map type %u outside the custom range", map_type);
    if (key_size == 0 || value_size == 0 || max_entries == 0)
        fail("create: zero size reached the provider (%u, %u, %u)", key_size, value_size, max_entries);
    if (*actual_value_size != value_size) fail("create: actual_value_size %u not preset to %u", *actual_value_size, value_size);
    if (binding->behavior.create_result != 0) return binding->behavior.create_result;
    uint32_t stored = binding->behavior.set_actual_value_size ? binding->behavior.actual_value_size : value_size;
    *actual_value_size = stored;
    struct fzp_context *context = NULL;
    if (!binding->behavior.null_context) {
        context = calloc(1, sizeof *context);
        if (!context) return ENOMEM;
        context->magic = FZP_CONTEXT_MAGIC;
        context->binding = binding;
        context->key_size = key_size;
        context->value_size = value_size;
        context->stored_size = stored;
        binding->stats.live_contexts++;
    }
    *map_context = context;
    binding->stats.creates++;
    return 0;
}

static void cb_map_delete(void *binding_context, void *map_context)
{
    fzp_binding_t *binding = binding_of(binding_context);
    struct fzp_context *context = context_of(binding, map_context);
    binding->stats.map_deletes++;
    if (binding->stats.map_deletes > binding->stats.creates) fail("map_delete called more often than create succeeded");
    if (context) {
        context->magic = 0xDEADDEADu;
        free(context);
        binding->stats.live_contexts--;
    }
}

static rcumaps_result_t cb_associate(void *binding_context, void *map_context, const uint8_t program_type[16])
{
    fzp_binding_t *binding = binding_of(binding_context);
    context_of(binding, map_context);
    if (!program_type) fail("associate: NULL program type");
    touch(program_type, 16, "program type");
    return binding->behavior.associate_result;
}

static rcumaps_result_t cb_find(void *binding_context, void *map_context, size_t key_size, const uint8_t *key,
                                size_t in_value_size, const uint8_t *in_value, size_t out_value_size,
                                uint8_t *out_value, uint32_t flags)
{
    fzp_binding_t *binding = binding_of(binding_context);
    struct fzp_context *context = context_of(binding, map_context);
    check_flags(binding, flags, 0, "find");
    check_key(context, key_size, key, "find");
    if (!in_value || in_value_size == 0) fail("find: no stored value");
    if (context && in_value_size != context->stored_size)
        fail("find: stored value of %zu bytes, the map stores %u", in_value_size, context->stored_size);
    touch(in_value, in_value_size, "find's stored value");
    if (binding->behavior.transforms) {
        if (!out_value || out_value_size == 0) fail("find: a transforming provider got no out_value");
        if (context && out_value_size != context->value_size)
            fail("find: out_value of %zu bytes, map values are %u", out_value_size, context->value_size);
        touch(out_value, out_value_size, "find's out_value");
    } else if (out_value || out_value_size) {
        fail("find: an identity provider got an out_value (%p, %zu)", (void *)out_value, out_value_size);
    }
    exercise_client(binding, context, key);
    if (binding->behavior.find_trigger >= 0 && key[0] == (uint8_t)binding->behavior.find_trigger &&
        binding->behavior.find_result != 0)
        return binding->behavior.find_result;
    if (binding->behavior.transforms) {
        if (in_value_size >= 8) {
            if (check_stored(binding, in_value, in_value_size, "find") == 0) return ENOENT;
            size_t payload = in_value_size - 8 < out_value_size ? in_value_size - 8 : out_value_size;
            memset(out_value, 0, out_value_size);
            memcpy(out_value, in_value + 8, payload);
        } else {
            if (stored_is_zero(in_value, in_value_size)) return ENOENT;
            size_t payload = in_value_size < out_value_size ? in_value_size : out_value_size;
            memset(out_value, 0, out_value_size);
            memcpy(out_value, in_value, payload);
        }
    }
    binding->stats.finds++;
    return 0;
}

static rcumaps_result_t cb_addition(void *binding_context, void *map_context, size_t key_size, const uint8_t *key,
                                    size_t in_value_size, const uint8_t *in_value, size_t out_value_size,
                                    uint8_t *out_value, uint32_t flags)
{
    fzp_binding_t *binding = binding_of(binding_context);
    struct fzp_context *context = context_of(binding, map_context);
    check_flags(binding, flags, 0, "addition");
    check_key(context, key_size, key, "addition");
    if (!in_value || in_value_size == 0) fail("addition: no value");
    if (context && in_value_size != context->value_size)
        fail("addition: value of %zu bytes, map values are %u", in_value_size, context->value_size);
    touch(in_value, in_value_size, "addition's value");
    if (binding->behavior.transforms) {
        if (!out_value || out_value_size == 0) fail("addition: a transforming provider got no out_value");
        if (context && out_value_size != context->stored_size)
            fail("addition: out_value of %zu bytes, the map stores %u", out_value_size, context->stored_size);
        touch(out_value, out_value_size, "addition's out_value");
    } else if (out_value || out_value_size) {
        fail("addition: an identity provider got an out_value (%p, %zu)", (void *)out_value, out_value_size);
    }
    exercise_client(binding, context, key);
    if (binding->behavior.addition_trigger >= 0 && in_value[0] == (uint8_t)binding->behavior.addition_trigger &&
        binding->behavior.addition_result != 0)
        return binding->behavior.addition_result;
    if (binding->behavior.transforms) {
        /* RCUMaps hands over a zeroed buffer; clear what this layout defines anyway. */
        memset(out_value, 0, out_value_size < 8 + FZP_CHECKED ? out_value_size : 8 + FZP_CHECKED);
        if (out_value_size >= 8) {
            uint32_t token = binding->next_token++;
            if (token >= FZP_TOKENS) fail("token table full: reset the binding between inputs");
            size_t payload = out_value_size - 8 < in_value_size ? out_value_size - 8 : in_value_size;
            memcpy(out_value + 8, in_value, payload);
            uint32_t sum = checksum(out_value + 8, out_value_size - 8 < FZP_CHECKED ? out_value_size - 8 : FZP_CHECKED);
            memcpy(out_value, &token, 4);
            memcpy(out_value + 4, &sum, 4);
            binding->live[token] = 1;
            binding->sums[token] = sum;
            binding->stats.live_tokens++;
        } else {
            memcpy(out_value, in_value, out_value_size < in_value_size ? out_value_size : in_value_size);
        }
    }
    binding->stats.additions++;
    return 0;
}

static void count_deletion(fzp_binding_t *binding, uint32_t flags)
{
    binding->stats.deletions++;
    if (flags & RCUMAPS_MAP_OPERATION_UPDATE) binding->stats.deletions_update++;
    if (flags & RCUMAPS_MAP_OPERATION_MAP_CLEANUP) binding->stats.deletions_cleanup++;
    if (flags & RCUMAPS_MAP_OPERATION_HELPER) binding->stats.deletions_helper++;
}

static void check_deleted_value(struct fzp_context *context, size_t value_size,
                                const uint8_t *value, const char *callback)
{
    if (!value || value_size == 0) fail("%s: no value", callback);
    if (context && value_size != context->stored_size)
        fail("%s: value of %zu bytes, the map stores %u", callback, value_size, context->stored_size);
    touch(value, value_size, "deleted value");
}

static rcumaps_result_t cb_pre_deletion(void *binding_context, void *map_context, size_t key_size, const uint8_t *key,
                                        size_t value_size, const uint8_t *value, uint32_t flags)
{
    fzp_binding_t *binding = binding_of(binding_context);
    struct fzp_context *context = context_of(binding, map_context);
    check_flags(binding, flags, 1, "pre-deletion");
    check_key(context, key_size, key, "pre-deletion");
    check_deleted_value(context, value_size, value, "pre-deletion");
    if (binding->behavior.transforms) check_stored(binding, value, value_size, "pre-deletion");
    exercise_client(binding, context, key);
    rcumaps_result_t result = 0;
    if (binding->behavior.pre_deletion_trigger >= 0 && key[0] == (uint8_t)binding->behavior.pre_deletion_trigger)
        result = binding->behavior.pre_deletion_result;
    /* An UPDATE or MAP_CLEANUP deletion cannot be refused: the value leaves whatever we answer. */
    int leaves = result == 0 || (flags & (RCUMAPS_MAP_OPERATION_UPDATE | RCUMAPS_MAP_OPERATION_MAP_CLEANUP));
    if (leaves) {
        release_stored(binding, value, value_size, "pre-deletion");
        count_deletion(binding, flags);
    } else {
        binding->stats.deletions_refused++;
    }
    return result;
}

static void cb_post_deletion(void *binding_context, void *map_context, size_t key_size, const uint8_t *key,
                             size_t value_size, const uint8_t *value, uint32_t flags)
{
    fzp_binding_t *binding = binding_of(binding_context);
    struct fzp_context *context = context_of(binding, map_context);
    check_flags(binding, flags, 1, "post-deletion");
    check_key(context, key_size, key, "post-deletion");
    check_deleted_value(context, value_size, value, "post-deletion");
    release_stored(binding, value, value_size, "post-deletion");
    count_deletion(binding, flags);
    exercise_client(binding, context, key);
}

/* Poisoned callbacks: a table the library should have copied, changed after registration. */
static rcumaps_result_t poisoned_create(void *b, uint32_t t, uint32_t k, uint32_t v, uint32_t m, uint32_t *a, void **c)
{
    (void)b; (void)t; (void)k; (void)v; (void)m; (void)a; (void)c;
    fail("RCUMaps called the caller's dispatch table after registration (create)");
}
static void poisoned_map_delete(void *b, void *c)
{
    (void)b; (void)c;
    fail("RCUMaps called the caller's dispatch table after registration (map_delete)");
}
static rcumaps_result_t poisoned_associate(void *b, void *c, const uint8_t p[16])
{
    (void)b; (void)c; (void)p;
    fail("RCUMaps called the caller's dispatch table after registration (associate)");
}
static rcumaps_result_t poisoned_element(void *b, void *c, size_t ks, const uint8_t *k, size_t is, const uint8_t *i,
                                         size_t os, uint8_t *o, uint32_t f)
{
    (void)b; (void)c; (void)ks; (void)k; (void)is; (void)i; (void)os; (void)o; (void)f;
    fail("RCUMaps called the caller's dispatch table after registration (find/addition)");
}
static rcumaps_result_t poisoned_pre_deletion(void *b, void *c, size_t ks, const uint8_t *k, size_t vs,
                                              const uint8_t *v, uint32_t f)
{
    (void)b; (void)c; (void)ks; (void)k; (void)vs; (void)v; (void)f;
    fail("RCUMaps called the caller's dispatch table after registration (pre-deletion)");
}
static void poisoned_post_deletion(void *b, void *c, size_t ks, const uint8_t *k, size_t vs, const uint8_t *v, uint32_t f)
{
    (void)b; (void)c; (void)ks; (void)k; (void)vs; (void)v; (void)f;
    fail("RCUMaps called the caller's dispatch table after registration (post-deletion)");
}

/* ---- bindings ---- */

fzp_binding_t *fzp_binding_create(const fzp_behavior_t *behavior)
{
    fzp_binding_t *binding = calloc(1, sizeof *binding);
    if (!binding) abort();
    binding->magic = FZP_BINDING_MAGIC;
    binding->behavior = *behavior;
    binding->next_token = 1;
    return binding;
}

void fzp_binding_set_behavior(fzp_binding_t *binding, const fzp_behavior_t *behavior) { binding->behavior = *behavior; }

fzp_stats_t fzp_binding_stats(const fzp_binding_t *binding) { return binding->stats; }

void fzp_binding_reset(fzp_binding_t *binding)
{
    if (binding->next_token > 1) memset(binding->live, 0, binding->next_token < FZP_TOKENS ? binding->next_token : FZP_TOKENS);
    binding->next_token = 1;
    memset(&binding->stats, 0, sizeof binding->stats);
    binding->helper = 0;
    binding->teardown = 0;
    binding->stale_finds = 0;
}

void fzp_binding_set_phase(fzp_binding_t *binding, int helper, int teardown)
{
    binding->helper = helper;
    binding->teardown = teardown;
}

void fzp_binding_allow_stale_finds(fzp_binding_t *binding, int allow) { binding->stale_finds = allow; }

void fzp_binding_destroy(fzp_binding_t *binding)
{
    binding->magic = 0;
    free(binding);
}

/* ---- tables ---- */

void *fzp_dispatch_create(uint32_t version, uint32_t size, size_t allocated, uint32_t present)
{
    rcumaps_provider_dispatch_table_t table;
    memset(&table, 0, sizeof table);
    table.version = version;
    table.size = size;
    if (present & FZP_CB_CREATE) table.preprocess_map_create = cb_create;
    if (present & FZP_CB_MAP_DELETE) table.postprocess_map_delete = cb_map_delete;
    if (present & FZP_CB_ASSOCIATE) table.preprocess_associate_program_type = cb_associate;
    if (present & FZP_CB_FIND) table.postprocess_find_element = cb_find;
    if (present & FZP_CB_ADDITION) table.preprocess_element_addition = cb_addition;
    if (present & FZP_CB_PRE_DELETION) table.preprocess_element_deletion = cb_pre_deletion;
    if (present & FZP_CB_POST_DELETION) table.postprocess_element_deletion = cb_post_deletion;
    if (allocated < 8) allocated = 8;
    uint8_t *block = calloc(1, allocated);
    if (!block) abort();
    memcpy(block, &table, allocated < sizeof table ? allocated : sizeof table);
    return block;
}

void fzp_dispatch_poison(void *block, size_t allocated)
{
    rcumaps_provider_dispatch_table_t table;
    memset(&table, 0, sizeof table);
    memcpy(&table, block, allocated < sizeof table ? allocated : sizeof table);
    if (table.preprocess_map_create) table.preprocess_map_create = poisoned_create;
    if (table.postprocess_map_delete) table.postprocess_map_delete = poisoned_map_delete;
    if (table.preprocess_associate_program_type) table.preprocess_associate_program_type = poisoned_associate;
    if (table.postprocess_find_element) table.postprocess_find_element = poisoned_element;
    if (table.preprocess_element_addition) table.preprocess_element_addition = poisoned_element;
    if (table.preprocess_element_deletion) table.preprocess_element_deletion = poisoned_pre_deletion;
    if (table.postprocess_element_deletion) table.postprocess_element_deletion = poisoned_post_deletion;
    memcpy(block, &table, allocated < sizeof table ? allocated : sizeof table);
}

void *fzp_registration_create(uint32_t version, uint32_t size, size_t allocated, uint32_t map_type,
                              uint32_t base_map, uint32_t updates_original_value, uint32_t reserved,
                              const void *dispatch, fzp_binding_t *binding)
{
    rcumaps_provider_registration_t registration;
    memset(&registration, 0, sizeof registration);
    registration.version = version;
    registration.size = size;
    registration.map_type = map_type;
    registration.base_map = base_map;
    registration.updates_original_value = updates_original_value;
    registration.reserved = reserved;
    registration.dispatch = dispatch;
    registration.binding_context = binding;
    if (allocated < 8) allocated = 8;
    uint8_t *block = calloc(1, allocated);
    if (!block) abort();
    memcpy(block, &registration, allocated < sizeof registration ? allocated : sizeof registration);
    return block;
}

/* The client table a registration wrote: a whole version-1 table, and always the same one. */
static void check_client_table(const rcumaps_client_dispatch_table_t *table)
{
    if (table->version != RCUMAPS_CLIENT_DISPATCH_VERSION || table->size < sizeof *table)
        fail("client table header {%u, %u}", table->version, table->size);
    if (!table->find_element || !table->epoch_enter || !table->epoch_exit || !table->epoch_allocate_with_tag ||
        !table->epoch_allocate_cache_aligned_with_tag || !table->epoch_free || !table->epoch_free_cache_aligned ||
        !table->map_context)
        fail("client table has a NULL service");
    if (client && client != table) fail("the client table changed between registrations");
    client = table;
}

int fzp_register(const void *registration, int want_client)
{
    const rcumaps_client_dispatch_table_t *table = NULL;
    int result = rcumaps_register_provider(registration, want_client ? &table : NULL);
    if (result < 0) fail("rcumaps_register_provider returned a negative result %d", result);
    if (result != 0) {
        /* The table is written before the type becomes usable, and a registration that
           fails may have written it too (rcumaps_provider.h): only ever that one table. */
        if (table) check_client_table(table);
        return result;
    }
    if (want_client) {
        if (!table) fail("rcumaps_register_provider succeeded without a client table");
        check_client_table(table);
    }
    return result;
}

int fzp_unregister(uint32_t map_type)
{
    int result = rcumaps_unregister_provider(map_type);
    if (result < 0) fail("rcumaps_unregister_provider returned a negative result %d", result);
    return result;
}

int fzp_attach_map(const void *map_handle)
{
    if (!client) return ENOENT;
    struct fzp_context *context = client->map_context(map_handle);
    if (!context) return ENOENT;
    if (context->magic != FZP_CONTEXT_MAGIC) fail("map_context returned something that is not a live context");
    context->map = map_handle;
    return 0;
}

int fzp_find_outside_epoch(const void *map_handle, const uint8_t *key)
{
    if (!client) return ENOENT;
    uint8_t *value = NULL;
    return client->find_element(map_handle, key, &value);
}

void fzp_unbalanced_epoch_exit(void)
{
    if (client) client->epoch_exit();
}

int fzp_have_client(void) { return client != NULL; }
