/*
 * Peer concurrent hash maps for the Benchmarks package: what C and C++ programmers pick
 * when they need a concurrent hash map, measured in the same run, with the same keys and
 * workloads as RCUMaps' maps.
 *
 *  - ConcurrencyKit ck_ht (libck-dev, C): CK_HT_MODE_DIRECT (8-byte keys and values in the
 *    table's own slots) with CK_HT_WORKLOAD_DELETE, the default hash (MurmurHash64A), twice
 *    the slots asked for (it grows at half full), a ck_malloc allocator whose deferred
 *    frees (a table replaced by a resize) go through ck_epoch. ck_ht is single-writer,
 *    multi-reader (its writers end in _spmc): readers run concurrently with one writer, so
 *    writers are serialised by a ck_spinlock per table, as ck_ht is meant to be used.
 *    Every lookup is a ck_epoch read section (begin, ck_ht_get_spmc, end).
 *  - libcuckoo (libcuckoo-dev, header-only C++): libcuckoo::cuckoohash_map<uint64_t,
 *    uint64_t> with its defaults (std::hash, 4 slots per bucket, std::allocator);
 *    find / insert / insert_or_assign / erase.
 *  - oneTBB tbb::concurrent_hash_map<uint64_t, uint64_t> (libtbb-dev) with its defaults
 *    (tbb_hash_compare, tbb_allocator): find with a const_accessor, replacement with an
 *    accessor, insert of a value_type, erase by key.
 *
 * Keys and values are 8 bytes. ck_ht reserves keys 0 and UINT64_MAX (its empty and
 * tombstone markers): its functions refuse them. Every table is created with room for
 * `capacity` entries (the benchmarks pass twice their entries, as RCUMaps' fixtures pass
 * maxEntries), so none resizes while measured.
 *
 * This header is plain C (opaque tables, no library header), so that Swift imports it
 * without the libraries' headers; the implementations are C (ck_ht) and C++ (libcuckoo,
 * TBB, exceptions caught at the boundary). Each operation is therefore one out-of-line
 * call from Swift, where the C baselines of the parent package (CRCUMapsBaselines) inline
 * their lookups: one call more per operation for the peers.
 *
 * Built only inside the Benchmarks package: RCUMaps itself never links these libraries.
 * Install them with Benchmarks/install-peers.sh.
 *
 * Return values, for every map:
 *   lookup: 1 found (the value stored through `value`), 0 absent;
 *   upsert: inserts or replaces; 0 done, -1 failed (no memory, or a reserved key);
 *   insert: inserts if absent; 1 inserted, 0 present (nothing changed), -1 failed;
 *   remove: 1 removed, 0 absent.
 * Every function is safe to call from any number of threads at once (ck_ht: writers take
 * the table's spinlock); destroy only when no other thread uses the table.
 */
#ifndef CPEERMAPS_H
#define CPEERMAPS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- ck_ht */

typedef struct rcumaps_peer_ckht rcumaps_peer_ckht_t;

/* NULL on failure. */
rcumaps_peer_ckht_t *rcumaps_peer_ckht_create(size_t capacity);
int rcumaps_peer_ckht_lookup(rcumaps_peer_ckht_t *table, uint64_t key, uint64_t *value);
int rcumaps_peer_ckht_upsert(rcumaps_peer_ckht_t *table, uint64_t key, uint64_t value);
int rcumaps_peer_ckht_insert(rcumaps_peer_ckht_t *table, uint64_t key, uint64_t value);
int rcumaps_peer_ckht_remove(rcumaps_peer_ckht_t *table, uint64_t key);
size_t rcumaps_peer_ckht_count(rcumaps_peer_ckht_t *table);
void rcumaps_peer_ckht_destroy(rcumaps_peer_ckht_t *table);

/* ------------------------------------------------------------ libcuckoo */

typedef struct rcumaps_peer_cuckoo rcumaps_peer_cuckoo_t;

rcumaps_peer_cuckoo_t *rcumaps_peer_cuckoo_create(size_t capacity);
int rcumaps_peer_cuckoo_lookup(rcumaps_peer_cuckoo_t *table, uint64_t key, uint64_t *value);
int rcumaps_peer_cuckoo_upsert(rcumaps_peer_cuckoo_t *table, uint64_t key, uint64_t value);
int rcumaps_peer_cuckoo_insert(rcumaps_peer_cuckoo_t *table, uint64_t key, uint64_t value);
int rcumaps_peer_cuckoo_remove(rcumaps_peer_cuckoo_t *table, uint64_t key);
size_t rcumaps_peer_cuckoo_count(rcumaps_peer_cuckoo_t *table);
void rcumaps_peer_cuckoo_destroy(rcumaps_peer_cuckoo_t *table);

/* -------------------------------------------------- tbb::concurrent_hash_map */

typedef struct rcumaps_peer_tbb rcumaps_peer_tbb_t;

rcumaps_peer_tbb_t *rcumaps_peer_tbb_create(size_t capacity);
int rcumaps_peer_tbb_lookup(rcumaps_peer_tbb_t *table, uint64_t key, uint64_t *value);
int rcumaps_peer_tbb_upsert(rcumaps_peer_tbb_t *table, uint64_t key, uint64_t value);
int rcumaps_peer_tbb_insert(rcumaps_peer_tbb_t *table, uint64_t key, uint64_t value);
int rcumaps_peer_tbb_remove(rcumaps_peer_tbb_t *table, uint64_t key);
size_t rcumaps_peer_tbb_count(rcumaps_peer_tbb_t *table);
void rcumaps_peer_tbb_destroy(rcumaps_peer_tbb_t *table);

#ifdef __cplusplus
}
#endif

#endif
