// oneTBB's concurrent_hash_map with its defaults (tbb_hash_compare, i.e. std::hash;
// tbb_allocator, which allocates through TBB's scalable allocator when libtbbmalloc is
// installed, as Debian's libtbb12 arranges). Lookups hold a const_accessor (the element's
// reader lock) while they copy the value; replacements an accessor (its writer lock).
// One node per element: an insert allocates, an erase frees. The table is created with
// `capacity` buckets, so it never rehashes while measured. Failures (no memory) are
// exceptions: none crosses the C interface.
#include "CPeerMaps.h"

#include <oneapi/tbb/concurrent_hash_map.h>

#include <cstdint>
#include <new>

using PeerTBBMap = tbb::concurrent_hash_map<uint64_t, uint64_t>;

struct rcumaps_peer_tbb {
    PeerTBBMap map;
    explicit rcumaps_peer_tbb(size_t capacity) : map(capacity) {}
};

extern "C" {

rcumaps_peer_tbb_t *rcumaps_peer_tbb_create(size_t capacity)
{
    try {
        return new rcumaps_peer_tbb(capacity);
    } catch (...) {
        return nullptr;
    }
}

int rcumaps_peer_tbb_lookup(rcumaps_peer_tbb_t *table, uint64_t key, uint64_t *value)
{
    try {
        PeerTBBMap::const_accessor element;
        if (!table->map.find(element, key)) return 0;
        *value = element->second;
        return 1;
    } catch (...) {
        return 0;
    }
}

int rcumaps_peer_tbb_upsert(rcumaps_peer_tbb_t *table, uint64_t key, uint64_t value)
{
    try {
        PeerTBBMap::accessor element;
        table->map.insert(element, key); // finds the element, or inserts it (value 0)
        element->second = value;
        return 0;
    } catch (...) {
        return -1;
    }
}

int rcumaps_peer_tbb_insert(rcumaps_peer_tbb_t *table, uint64_t key, uint64_t value)
{
    try {
        return table->map.insert(PeerTBBMap::value_type(key, value)) ? 1 : 0;
    } catch (...) {
        return -1;
    }
}

int rcumaps_peer_tbb_remove(rcumaps_peer_tbb_t *table, uint64_t key)
{
    try {
        return table->map.erase(key) ? 1 : 0;
    } catch (...) {
        return 0;
    }
}

size_t rcumaps_peer_tbb_count(rcumaps_peer_tbb_t *table)
{
    return table->map.size();
}

void rcumaps_peer_tbb_destroy(rcumaps_peer_tbb_t *table)
{
    delete table;
}

} // extern "C"
