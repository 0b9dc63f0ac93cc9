#include "ctest_provider.h"
#include "rcumaps_provider.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define CTEST_CONTEXT_MAGIC 0xC0FFEEu

struct ctest_context { uint32_t magic; };

static uint64_t counters[CTEST_COUNTER_COUNT];
static const rcumaps_client_dispatch_table_t *client;

static void bump(int counter) { __atomic_fetch_add(&counters[counter], 1, __ATOMIC_RELAXED); }

uint64_t ctest_provider_count(int counter)
{
    return __atomic_load_n(&counters[counter], __ATOMIC_RELAXED);
}

static rcumaps_result_t create(void *binding, uint32_t map_type, uint32_t key_size, uint32_t value_size,
                               uint32_t max_entries, uint32_t *actual_value_size, void **map_context)
{
    (void)binding; (void)map_type; (void)key_size; (void)max_entries;
    if (value_size != 4) return EINVAL;
    struct ctest_context *context = malloc(sizeof *context);
    if (!context) return ENOMEM;
    context->magic = CTEST_CONTEXT_MAGIC;
    *actual_value_size = 8;
    *map_context = context;
    bump(CTEST_CREATES);
    return 0;
}

static void probe_map_delete(void *map_context);

static void map_delete(void *binding, void *map_context)
{
    (void)binding;
    probe_map_delete(map_context);
    free(map_context);
    bump(CTEST_MAP_DELETES);
}

static rcumaps_result_t associate(void *binding, void *map_context, const uint8_t program_type[16])
{
    (void)binding; (void)map_context;
    if (program_type[0] == 0xFF) return EPERM;
    bump(CTEST_ASSOCIATIONS);
    return 0;
}

static rcumaps_result_t find(void *binding, void *map_context, size_t key_size, const uint8_t *key,
                             size_t in_value_size, const uint8_t *in_value, size_t out_value_size,
                             uint8_t *out_value, uint32_t flags)
{
    (void)binding; (void)map_context; (void)key_size; (void)key; (void)flags;
    if (in_value_size != 8 || !in_value) return EINVAL;
    uint32_t stored[2];
    memcpy(stored, in_value, 8);
    if (stored[1] != ~stored[0]) return EINVAL; /* not a value we stored */
    if (out_value) {
        if (out_value_size != 4) return EINVAL;
        memcpy(out_value, &stored[0], 4);
    }
    bump(CTEST_FINDS);
    return 0;
}

static rcumaps_result_t addition(void *binding, void *map_context, size_t key_size, const uint8_t *key,
                                 size_t in_value_size, const uint8_t *in_value, size_t out_value_size,
                                 uint8_t *out_value, uint32_t flags)
{
    (void)binding; (void)map_context; (void)key_size; (void)key; (void)flags;
    if (in_value_size != 4 || !out_value || out_value_size != 8) return EINVAL;
    uint32_t stored[2];
    memcpy(&stored[0], in_value, 4);
    if (stored[0] == 0xDEADBEEFu) return EINVAL;
    stored[1] = ~stored[0];
    memcpy(out_value, stored, 8);
    bump(CTEST_ADDITIONS);
    return 0;
}

/* The map whose teardown ctest_provider_probe_teardown watches (its handle and context), and
 * what the client table answered there. */
static const void *probe_map;
static void *probe_context;
static int probe_find_result = -1, probe_context_result = -1;
/* The same, asked from the map's postprocess_map_delete (after its base map is gone). */
static void *probe_delete_context;
static int probe_delete_find_result = -1, probe_delete_context_result = -1;

static void probe_map_delete(void *map_context)
{
    if (!probe_delete_context || map_context != probe_delete_context) return;
    const rcumaps_client_dispatch_table_t *table = __atomic_load_n(&client, __ATOMIC_ACQUIRE);
    const uint32_t key = 3;
    uint8_t *found = NULL;
    table->epoch_enter();
    probe_delete_find_result = table->find_element(probe_map, (const uint8_t *)&key, &found);
    table->epoch_exit();
    probe_delete_context_result = table->map_context(probe_map) == NULL ? 0 : 1;
    probe_delete_context = NULL;
}

static void deletion(void *binding, void *map_context, size_t key_size, const uint8_t *key,
                     size_t value_size, const uint8_t *value, uint32_t flags)
{
    (void)binding; (void)map_context; (void)key_size; (void)key; (void)value_size; (void)value;
    if ((flags & RCUMAPS_MAP_OPERATION_MAP_CLEANUP) && probe_context && map_context == probe_context) {
        const rcumaps_client_dispatch_table_t *table = __atomic_load_n(&client, __ATOMIC_ACQUIRE);
        uint8_t *found = NULL;
        table->epoch_enter();
        probe_find_result = table->find_element(probe_map, key, &found);
        table->epoch_exit();
        probe_context_result = table->map_context(probe_map) == NULL ? 0 : 1;
        probe_context = NULL;
    }
    bump(CTEST_DELETIONS);
    if (flags & RCUMAPS_MAP_OPERATION_UPDATE) bump(CTEST_DELETIONS_UPDATE);
    if (flags & RCUMAPS_MAP_OPERATION_MAP_CLEANUP) bump(CTEST_DELETIONS_CLEANUP);
    if (flags & RCUMAPS_MAP_OPERATION_HELPER) bump(CTEST_DELETIONS_HELPER);
}

static rcumaps_result_t pre_deletion(void *binding, void *map_context, size_t key_size, const uint8_t *key,
                                     size_t value_size, const uint8_t *value, uint32_t flags)
{
    (void)binding; (void)map_context; (void)key_size; (void)key; (void)value_size; (void)value; (void)flags;
    return 0;
}

static const rcumaps_provider_dispatch_table_t dispatch = {
    .version = RCUMAPS_PROVIDER_DISPATCH_VERSION,
    .size = sizeof(rcumaps_provider_dispatch_table_t),
    .preprocess_map_create = create,
    .postprocess_map_delete = map_delete,
    .preprocess_associate_program_type = associate,
    .postprocess_find_element = find,
    .preprocess_element_addition = addition,
    .preprocess_element_deletion = NULL,
    .postprocess_element_deletion = deletion,
};

static rcumaps_provider_registration_t make_registration(uint32_t map_type, uint32_t base_map,
                                                         const rcumaps_provider_dispatch_table_t *table)
{
    rcumaps_provider_registration_t registration = {
        .version = RCUMAPS_PROVIDER_REGISTRATION_VERSION,
        .size = sizeof(rcumaps_provider_registration_t),
        .map_type = map_type,
        .base_map = base_map,
        .updates_original_value = 1,
        .reserved = 0,
        .dispatch = table,
        .binding_context = NULL,
    };
    return registration;
}

int ctest_provider_register(uint32_t map_type, uint32_t base_map)
{
    rcumaps_provider_registration_t registration = make_registration(map_type, base_map, &dispatch);
    const rcumaps_client_dispatch_table_t *table = NULL;
    int result = rcumaps_register_provider(&registration, &table);
    if (result == 0) __atomic_store_n(&client, table, __ATOMIC_RELEASE);
    return result;
}

int ctest_provider_register_into(uint32_t map_type, uint32_t base_map, const rcumaps_client_dispatch_table_t **into)
{
    rcumaps_provider_registration_t registration = make_registration(map_type, base_map, &dispatch);
    return rcumaps_register_provider(&registration, into);
}

int ctest_provider_register_malformed(int variant, uint32_t map_type)
{
    static rcumaps_provider_dispatch_table_t broken;
    rcumaps_provider_registration_t registration = make_registration(map_type, RCUMAPS_BASE_MAP_HASH_BUCKET_LOCKED, &broken);
    broken = dispatch;
    switch (variant) {
    case 0: return rcumaps_register_provider(NULL, NULL);
    case 1: registration.size = 8; break;
    case 2: broken.size = 16; break;
    case 3: broken.preprocess_element_deletion = pre_deletion; break;
    case 4: broken.preprocess_map_create = NULL; break;
    case 5: registration.base_map = 99; break;
    case 6: registration.dispatch = NULL; break;
    case 7: broken.version = RCUMAPS_PROVIDER_DISPATCH_VERSION + 1; break; /* a later version */
    case 8: broken.version = 0; break;
    case 9: registration.version = RCUMAPS_PROVIDER_REGISTRATION_VERSION + 1; break;
    case 10: broken.postprocess_find_element = NULL; break;    /* translating, no find */
    case 11: broken.preprocess_element_addition = NULL; break; /* translating, no addition */
    default: return -1;
    }
    return rcumaps_register_provider(&registration, NULL);
}

int ctest_provider_register_from_stack(uint32_t map_type, uint32_t base_map)
{
    /* A table and a registration that live on this frame only: the library copies what it
     * needs while registering (rcumaps_provider.h), so scribbling over both afterwards
     * changes nothing. */
    rcumaps_provider_dispatch_table_t table = dispatch;
    rcumaps_provider_registration_t registration = make_registration(map_type, base_map, &table);
    int result = rcumaps_register_provider(&registration, NULL);
    volatile unsigned char *bytes = (volatile unsigned char *)&table;
    for (size_t i = 0; i < sizeof table; i++) bytes[i] = 0xA5;
    bytes = (volatile unsigned char *)&registration;
    for (size_t i = 0; i < sizeof registration; i++) bytes[i] = 0xA5;
    return result;
}

int ctest_provider_unregister(uint32_t map_type) { return rcumaps_unregister_provider(map_type); }

int ctest_provider_find_via_client(const void *map, uint32_t key, uint64_t *stored)
{
    const rcumaps_client_dispatch_table_t *table = __atomic_load_n(&client, __ATOMIC_ACQUIRE);
    if (!table) return ENOENT;
    if (table->find_element(NULL, NULL, NULL) != EINVAL) return -2; /* NULLs must be refused */
    uint8_t *value = NULL;
    table->epoch_enter();
    int result = table->find_element(map, (const uint8_t *)&key, &value);
    if (result == 0) memcpy(stored, value, 8);
    table->epoch_exit();
    return result;
}

int ctest_provider_allocate_via_client(uint32_t tag)
{
    const rcumaps_client_dispatch_table_t *table = __atomic_load_n(&client, __ATOMIC_ACQUIRE);
    if (!table) return ENOENT;
    table->epoch_enter();
    void *plain = table->epoch_allocate_with_tag(100, tag);
    void *aligned = table->epoch_allocate_cache_aligned_with_tag(100, tag);
    int result = (plain && aligned && ((uintptr_t)aligned % 64) == 0) ? 0 : ENOMEM;
    if (plain) { memset(plain, 1, 100); table->epoch_free(plain); }
    if (aligned) { memset(aligned, 2, 100); table->epoch_free_cache_aligned(aligned); }
    table->epoch_exit();
    return result;
}

int ctest_provider_allocate_huge_via_client(size_t size, uint32_t tag)
{
    const rcumaps_client_dispatch_table_t *table = __atomic_load_n(&client, __ATOMIC_ACQUIRE);
    if (!table) return ENOENT;
    void *plain = table->epoch_allocate_with_tag(size, tag);
    void *aligned = table->epoch_allocate_cache_aligned_with_tag(size, tag);
    if (plain) table->epoch_free(plain);
    if (aligned) table->epoch_free_cache_aligned(aligned);
    return (plain || aligned) ? EEXIST : 0;
}

int ctest_provider_exit_without_enter(void)
{
    const rcumaps_client_dispatch_table_t *table = __atomic_load_n(&client, __ATOMIC_ACQUIRE);
    if (!table) return ENOENT;
    table->epoch_exit();
    return 0;
}

int ctest_provider_epoch_enter(void)
{
    const rcumaps_client_dispatch_table_t *table = __atomic_load_n(&client, __ATOMIC_ACQUIRE);
    if (!table) return ENOENT;
    table->epoch_enter();
    return 0;
}

uint32_t ctest_provider_context_magic(const void *map)
{
    const rcumaps_client_dispatch_table_t *table = __atomic_load_n(&client, __ATOMIC_ACQUIRE);
    if (!table) return 0;
    const struct ctest_context *context = table->map_context(map);
    return context ? context->magic : 0;
}

void ctest_provider_probe_teardown(const void *map)
{
    const rcumaps_client_dispatch_table_t *table = __atomic_load_n(&client, __ATOMIC_ACQUIRE);
    probe_find_result = probe_context_result = -1;
    probe_delete_find_result = probe_delete_context_result = -1;
    probe_map = map;
    probe_context = table ? table->map_context(map) : NULL;
    probe_delete_context = probe_context;
}

int ctest_provider_probe_delete_find_result(void) { return probe_delete_find_result; }
int ctest_provider_probe_delete_context_result(void) { return probe_delete_context_result; }

int ctest_provider_probe_find_result(void) { return probe_find_result; }
int ctest_provider_probe_context_result(void) { return probe_context_result; }

int ctest_provider_find_without_epoch(const void *map, uint32_t key)
{
    const rcumaps_client_dispatch_table_t *table = __atomic_load_n(&client, __ATOMIC_ACQUIRE);
    if (!table) return ENOENT;
    uint8_t *value = NULL;
    return table->find_element(map, (const uint8_t *)&key, &value);
}

static rcumaps_result_t create_int_min(void *binding, uint32_t map_type, uint32_t key_size, uint32_t value_size,
                                       uint32_t max_entries, uint32_t *actual_value_size, void **map_context)
{
    (void)binding; (void)map_type; (void)key_size; (void)value_size; (void)max_entries;
    (void)actual_value_size; (void)map_context;
    return INT_MIN;
}

static int32_t create_result_value;

static rcumaps_result_t create_result(void *binding, uint32_t map_type, uint32_t key_size, uint32_t value_size,
                                      uint32_t max_entries, uint32_t *actual_value_size, void **map_context)
{
    (void)binding; (void)map_type; (void)key_size; (void)value_size; (void)max_entries;
    (void)actual_value_size; (void)map_context;
    return __atomic_load_n(&create_result_value, __ATOMIC_RELAXED);
}

int ctest_provider_register_create_result(uint32_t map_type, int32_t result)
{
    static rcumaps_provider_dispatch_table_t table;
    __atomic_store_n(&create_result_value, result, __ATOMIC_RELAXED);
    table = dispatch;
    table.preprocess_map_create = create_result;
    rcumaps_provider_registration_t registration = make_registration(map_type, RCUMAPS_BASE_MAP_ARRAY, &table);
    return rcumaps_register_provider(&registration, NULL);
}

int ctest_provider_register_int_min(uint32_t map_type)
{
    static rcumaps_provider_dispatch_table_t table;
    table = dispatch;
    table.preprocess_map_create = create_int_min;
    rcumaps_provider_registration_t registration = make_registration(map_type, RCUMAPS_BASE_MAP_ARRAY, &table);
    return rcumaps_register_provider(&registration, NULL);
}
