// libcuckoo's cuckoohash_map with its defaults (std::hash, std::equal_to, std::allocator,
// 4 slots per bucket). Every operation locks the two candidate buckets (readers too);
// the table is sized for `capacity` entries at creation, so it never grows while measured.
// libcuckoo reports failures (no memory, load factor too low) by exceptions: none crosses
// the C interface.
#include "CPeerMaps.h"

#include <libcuckoo/cuckoohash_map.hh>

#include <cstdint>
#include <new>

struct rcumaps_peer_cuckoo {
    libcuckoo::cuckoohash_map<uint64_t, uint64_t> map;
    explicit rcumaps_peer_cuckoo(size_t capacity) : map(capacity) {}
};

extern "C" {

rcumaps_peer_cuckoo_t *rcumaps_peer_cuckoo_create(size_t capacity)
{
    try {
        return new rcumaps_peer_cuckoo(capacity);
    } catch (...) {
        return nullptr;
    }
}

int rcumaps_peer_cuckoo_lookup(rcumaps_peer_cuckoo_t *table, uint64_t key, uint64_t *value)
{
    try {
        return table->map.find(key, *value) ? 1 : 0;
    } catch (...) {
        return 0;
    }
}

int rcumaps_peer_cuckoo_upsert(rcumaps_peer_cuckoo_t *table, uint64_t key, uint64_t value)
{
    try {
        table->map.insert_or_assign(key, value);
        return 0;
    } catch (...) {
        return -1;
    }
}

int rcumaps_peer_cuckoo_insert(rcumaps_peer_cuckoo_t *table, uint64_t key, uint64_t value)
{
    try {
        return table->map.insert(key, value) ? 1 : 0;
    } catch (...) {
        return -1;
    }
}

int rcumaps_peer_cuckoo_remove(rcumaps_peer_cuckoo_t *table, uint64_t key)
{
    try {
        return table->map.erase(key) ? 1 : 0;
    } catch (...) {
        return 0;
    }
}

size_t rcumaps_peer_cuckoo_count(rcumaps_peer_cuckoo_t *table)
{
    return table->map.size();
}

void rcumaps_peer_cuckoo_destroy(rcumaps_peer_cuckoo_t *table)
{
    delete table;
}

} // extern "C"
