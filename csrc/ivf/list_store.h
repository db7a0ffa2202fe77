// The inverted lists of an IndexIVFDPQ: per list, its vectors' codes in the
// flat index's 32-vector level-major blocks (code_layout.h), their float32
// prefix norms (one column per stored prefix, padded to whole blocks, as
// CodeStore keeps them) and their ids.
//
// Two backings share one read interface (ListRef): RamLists, growable and
// editable, and MappedLists (mapped_lists.h), read-only views into a
// memory-mapped file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "../code_layout.h"

namespace dpq::ivf {

// One list as the search reads it. Norm column j (a stored prefix slot)
// holds the float32 norms of vectors 32b..32b+31 at norms + j * norm_stride + 32b.
struct ListRef {
    size_t n = 0;
    const uint8_t* codes = nullptr;
    const float* norms = nullptr;
    size_t norm_stride = 0;  // floats between two norm columns
    const int64_t* ids = nullptr;

    const float* norm_column(int j) const { return norms + size_t(j) * norm_stride; }
};

class ListStore {
   public:
    virtual ~ListStore() = default;
    virtual size_t nlist() const = 0;
    virtual size_t list_size(size_t l) const = 0;
    // Throws (std::runtime_error) when a mapped list fails its checksum.
    virtual ListRef list(size_t l) const = 0;
    virtual bool writable() const = 0;
    // Checks list l now (a mapped list's checksum); throws std::runtime_error.
    virtual void verify(size_t l) const {}
};

class RamLists final : public ListStore {
   public:
    RamLists(size_t nlist, const CodeLayout& layout, int norm_slots);

    size_t nlist() const override { return lists_.size(); }
    size_t list_size(size_t l) const override { return lists_[l].n; }
    ListRef list(size_t l) const override;
    bool writable() const override { return true; }

    // Appends n vectors to list l: codes n x levels (one index per byte),
    // norms n x norm_slots, ids n.
    void append(size_t l, size_t n, const uint8_t* codes, const float* norms, const int64_t* ids);
    // Appends raw blocks (nb = nblocks(n) blocks), norm columns of stride
    // nblocks(n) * 32 and ids: a list as ListRef shows it.
    void append(size_t l, const ListRef& src);
    // Keeps the vectors of list l whose keep[i] is true, in order; returns how many went.
    size_t compact(size_t l, const std::vector<bool>& keep);
    void clear();
    size_t memory_bytes() const;

   private:
    struct List {
        size_t n = 0, cap_blocks = 0;
        std::vector<uint8_t> codes;  // cap_blocks blocks
        std::vector<float> norms;    // norm_slots columns of cap_blocks * 32
        std::vector<int64_t> ids;
    };
    void reserve(List& L, size_t n);
    void put(List& L, size_t i, const uint8_t* code, const float* norms, int64_t id) const;

    CodeLayout layout_;
    int slots_;
    std::vector<List> lists_;
};

}  // namespace dpq::ivf
