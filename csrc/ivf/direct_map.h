// Where each id is stored, as Faiss's DirectMap (its Hashtable kind): an
// IndexIVFDPQ that keeps one reconstructs by id without scanning the lists'
// ids. It is kept through add, remove_ids, merge_from and reset; while it
// is kept, ids are unique keys. Not stored in files (make_direct_map after
// reading rebuilds it from the lists' ids).
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <unordered_set>

#include "../check.h"
#include "list_store.h"

namespace dpq::ivf {

class DirectMap {
   public:
    struct Location {
        size_t list, offset;
    };

    // Throws std::invalid_argument naming the first of n ids that is mapped
    // already or repeated among them.
    void check_new(size_t n, const int64_t* ids) const {
        std::unordered_set<int64_t> seen;
        seen.reserve(n);
        for (size_t i = 0; i < n; i++)
            DPQ_CHECK(!map_.count(ids[i]) && seen.insert(ids[i]).second, std::invalid_argument,
                      "IndexIVFDPQ: id %lld would be stored twice; ids are unique while a direct map is kept "
                      "(make_direct_map(False) to allow repeats)",
                      (long long)ids[i]);
    }
    void set(int64_t id, size_t list, size_t offset) { map_[id] = (uint64_t(list) << 32) | uint64_t(offset); }
    void erase(int64_t id) { map_.erase(id); }
    // Maps every vector of list l at its offset (after the list changed).
    void map_list(size_t l, const ListRef& L) {
        for (size_t i = 0; i < L.n; i++) set(L.ids[i], l, i);
    }
    bool find(int64_t id, Location& out) const {
        const auto it = map_.find(id);
        if (it == map_.end()) return false;
        out = {size_t(it->second >> 32), size_t(it->second & 0xFFFFFFFFu)};
        return true;
    }
    void reserve(size_t n) { map_.reserve(n); }
    void clear() { map_.clear(); }
    size_t size() const { return map_.size(); }

    // The map of every list's ids; throws (as check_new) on a repeated id.
    static DirectMap of(const ListStore& lists) {
        DirectMap m;
        for (size_t l = 0; l < lists.nlist(); l++) {
            const ListRef L = lists.list(l);
            m.check_new(L.n, L.ids);
            m.map_list(l, L);
        }
        return m;
    }

   private:
    std::unordered_map<int64_t, uint64_t> map_;  // id -> list << 32 | offset (offsets < 2^32)
};

}  // namespace dpq::ivf
