/*
 * A custom map provider written in C, used by the tests to prove the C ABI
 * (rcumaps_provider.h) end to end.
 *
 * The "checked" provider: users store a uint32_t; the map stores 8 bytes,
 * {value, ~value} (updates_original_value), so finds can verify what they
 * translate. Additions of 0xDEADBEEF are refused with EINVAL. Deletions are
 * counted by flag. Program types whose first byte is 0xFF are refused (EPERM).
 */
#ifndef CTEST_PROVIDER_H
#define CTEST_PROVIDER_H
#include <stddef.h>
#include <stdint.h>

#include "rcumaps_provider.h"

enum ctest_counter {
    CTEST_CREATES, CTEST_MAP_DELETES, CTEST_FINDS, CTEST_ADDITIONS, CTEST_DELETIONS,
    CTEST_DELETIONS_UPDATE, CTEST_DELETIONS_CLEANUP, CTEST_DELETIONS_HELPER, CTEST_ASSOCIATIONS,
    CTEST_COUNTER_COUNT
};

/* Registers the provider for map_type on base_map (RCUMAPS_BASE_MAP_*). Returns 0 or errno. */
int ctest_provider_register(uint32_t map_type, uint32_t base_map);
/* As ctest_provider_register, the client table written to *into by the registration itself. */
int ctest_provider_register_into(uint32_t map_type, uint32_t base_map, const rcumaps_client_dispatch_table_t **into);
/* Malformed registrations, by variant (0 NULL registration, 1 short registration,
 * 2 short dispatch table, 3 both deletion callbacks, 4 no create callback,
 * 5 unknown base map, 6 NULL dispatch, 7 a dispatch table of a later version,
 * 8 a dispatch table of version 0, 9 a registration of a later version, 10 a translating
 * provider without postprocess_find_element, 11 one without preprocess_element_addition).
 * Returns rcumaps_register_provider's result, or -1 for an unknown variant. */
int ctest_provider_register_malformed(int variant, uint32_t map_type);
/* Registers the test provider from a table and a registration on the stack, overwritten
 * with garbage as soon as the call returns; rcumaps_register_provider's result. */
int ctest_provider_register_from_stack(uint32_t map_type, uint32_t base_map);
int ctest_provider_unregister(uint32_t map_type);
uint64_t ctest_provider_count(int counter);

/* Through the client dispatch table: enter an epoch, find `key` in `map` (a
 * RawCustomMap.cHandle), copy the 8 stored bytes to *stored, leave. */
int ctest_provider_find_via_client(const void *map, uint32_t key, uint64_t *stored);
/* Through the client table: allocate (plain and cache-aligned) under `tag`, free both. */
int ctest_provider_allocate_via_client(uint32_t tag);
/* find_element called outside any epoch (must be refused with EINVAL). */
int ctest_provider_find_without_epoch(const void *map, uint32_t key);
/* Registers a provider whose create callback returns INT_MIN (must not crash RCUMaps). */
int ctest_provider_register_int_min(uint32_t map_type);
/* Registers a provider whose create callback returns `result` (any int). */
int ctest_provider_register_create_result(uint32_t map_type, int32_t result);

/* Through the client table: allocate `size` bytes (plain and cache-aligned). Returns 0
 * when both were refused with NULL, EEXIST when either succeeded (both are freed). */
int ctest_provider_allocate_huge_via_client(size_t size, uint32_t tag);
/* Through the client table: epoch_exit() with no epoch_enter() (a provider bug), and a
 * bare epoch_enter() (the test pairs it with ctest_provider_exit_without_enter). */
int ctest_provider_exit_without_enter(void);
int ctest_provider_epoch_enter(void);

/* Watches `map`'s teardown: its first MAP_CLEANUP deletion calls find_element and
 * map_context with the map's handle; the results are kept (-1 until then): the
 * find_element result, and 1 if map_context returned a context, 0 if NULL. */
void ctest_provider_probe_teardown(const void *map);
int ctest_provider_probe_find_result(void);
int ctest_provider_probe_context_result(void);
/* What find_element (of key 3) and map_context answered for the probed map from inside its
 * postprocess_map_delete: -1 if it has not run. */
int ctest_provider_probe_delete_find_result(void);
int ctest_provider_probe_delete_context_result(void);

/* The magic number in the map context the client table returns for `map`. */
uint32_t ctest_provider_context_magic(const void *map);

#endif
