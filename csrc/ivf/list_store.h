// The inverted lists of an IndexIVFDPQ: per list, its vectors' codes in the
// flat index's 32-vector level-major blocks (code_layout.h), their prefix
// norms (float32 or codes: one NormColumn per stored prefix, padded to whole
// blocks, as CodeStore keeps them) and their ids.
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
// starts at norms + j * norm_stride, laid out as `column` says.
struct ListRef {
    size_t n = 0;
    const uint8_t* codes = nullptr;
    const uint8_t* norms = nullptr;
    size_t norm_stride = 0;  // bytes between two norm columns
    NormColumn column;
    const int64_t* ids = nullptr;

    const uint8_t* norm_column(int j) const { return norms + size_t(j) * norm_stride; }
    // Float32 columns only.
    const float* norm_floats(int j) const { return reinterpret_cast<const float*>(norm_column(j)); }
    // Vector i's element of column j: a float32's bits or a code.
    uint32_t norm_element(int j, size_t i) const { return column.get(norm_column(j), i); }
};

// How a list's bytes are laid out: the code layout and the norm columns.
// The one description of a list, for RAM and for files alike.
struct ListFormat {
    CodeLayout layout;
    NormColumn column;
    int slots = 0;  // norm columns (stored prefixes)
    // Bytes of a contiguous list of n vectors: codes, norm columns, ids.
    size_t bytes(size_t n) const;
    // The ListRef of a contiguous list of n vectors stored at p.
    ListRef at(const uint8_t* p, size_t n) const;
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
    RamLists(size_t nlist, const ListFormat& format);

    size_t nlist() const override { return lists_.size(); }
    size_t list_size(size_t l) const override { return lists_[l].n; }
    ListRef list(size_t l) const override;
    bool writable() const override { return true; }

    // Appends n vectors to list l: codes n x levels (one index per byte),
    // norms n x format.slots elements (NormColumn::get), ids n.
    void append(size_t l, size_t n, const uint8_t* codes, const uint32_t* norms, const int64_t* ids);
    // Appends a list as ListRef shows it (its norm columns in this store's format).
    void append(size_t l, const ListRef& src);
    // Keeps the vectors of list l whose keep[i] is true, in order; returns how many went.
    size_t compact(size_t l, const std::vector<bool>& keep);
    void clear();
    size_t memory_bytes() const;

   private:
    struct List {
        size_t n = 0, cap_blocks = 0;
        std::vector<uint8_t> codes;  // cap_blocks blocks
        std::vector<uint8_t> norms;  // norm_slots columns of cap_blocks blocks
        std::vector<int64_t> ids;
    };
    void reserve(List& L, size_t n);
    void put(List& L, size_t i, const uint8_t* code, const uint32_t* norms, int64_t id) const;
    size_t column_bytes(const List& L) const { return L.cap_blocks * format_.column.block_bytes(); }

    ListFormat format_;
    std::vector<List> lists_;
};

}  // namespace dpq::ivf
