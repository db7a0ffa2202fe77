#include "list_store.h"

#include <algorithm>
#include <cstring>

namespace dpq::ivf {

size_t ListFormat::bytes(size_t n) const {
    const size_t nb = CodeLayout::nblocks(n);
    return nb * layout.block_bytes() + size_t(slots) * nb * column.block_bytes() + n * sizeof(int64_t);
}

ListRef ListFormat::at(const uint8_t* p, size_t n) const {
    const size_t nb = CodeLayout::nblocks(n);
    ListRef r;
    r.n = n;
    r.codes = p;
    r.norms = p + nb * layout.block_bytes();
    r.norm_stride = nb * column.block_bytes();
    r.column = column;
    r.ids = reinterpret_cast<const int64_t*>(r.norms + size_t(slots) * r.norm_stride);
    return r;
}

RamLists::RamLists(size_t nlist, const ListFormat& format) : format_(format), lists_(nlist) {}

ListRef RamLists::list(size_t l) const {
    const List& L = lists_[l];
    return {L.n, L.codes.data(), L.norms.data(), column_bytes(L), format_.column, L.ids.data()};
}

// Capacity grows by doubling, so that the norm columns (whose stride is the
// capacity) are re-laid out O(log n) times per list.
void RamLists::reserve(List& L, size_t n) {
    const size_t need = CodeLayout::nblocks(n);
    if (need <= L.cap_blocks) return;
    const size_t cap = std::max(need, 2 * L.cap_blocks);
    L.codes.resize(cap * format_.layout.block_bytes(), 0);
    const size_t old_bytes = column_bytes(L), new_bytes = cap * format_.column.block_bytes();
    std::vector<uint8_t> norms(size_t(format_.slots) * new_bytes, 0);
    for (int j = 0; j < format_.slots; j++)
        std::copy_n(L.norms.data() + size_t(j) * old_bytes, old_bytes, norms.data() + size_t(j) * new_bytes);
    L.norms.swap(norms);
    L.cap_blocks = cap;
    L.ids.reserve(cap * kBlockSize);
}

void RamLists::put(List& L, size_t i, const uint8_t* code, const uint32_t* norms, int64_t id) const {
    uint8_t* blk = L.codes.data() + format_.layout.block_offset(i);
    for (int l = 0; l < format_.layout.levels; l++) format_.layout.set(blk, l, i % kBlockSize, code[l]);
    for (int j = 0; j < format_.slots; j++) format_.column.set(L.norms.data() + size_t(j) * column_bytes(L), i, norms[j]);
    L.ids[i] = id;
}

void RamLists::append(size_t l, size_t n, const uint8_t* codes, const uint32_t* norms, const int64_t* ids) {
    List& L = lists_[l];
    reserve(L, L.n + n);
    L.ids.resize(L.n + n);
    for (size_t i = 0; i < n; i++)
        put(L, L.n + i, codes + i * format_.layout.levels, norms + i * format_.slots, ids[i]);
    L.n += n;
}

void RamLists::append(size_t l, const ListRef& src) {
    std::vector<uint8_t> code(format_.layout.levels);
    std::vector<uint32_t> norms(format_.slots);
    List& L = lists_[l];
    reserve(L, L.n + src.n);
    L.ids.resize(L.n + src.n);
    for (size_t i = 0; i < src.n; i++) {
        format_.layout.get_code(src.codes, i, code.data());
        for (int j = 0; j < format_.slots; j++) norms[j] = src.norm_element(j, i);
        put(L, L.n + i, code.data(), norms.data(), src.ids[i]);
    }
    L.n += src.n;
}

size_t RamLists::compact(size_t l, const std::vector<bool>& keep) {
    List& L = lists_[l];
    List out;
    size_t kept = 0;
    for (size_t i = 0; i < L.n; i++) kept += keep[i];
    if (kept == L.n) return 0;
    reserve(out, kept);
    out.ids.resize(kept);
    const ListRef src = list(l);
    std::vector<uint8_t> code(format_.layout.levels);
    std::vector<uint32_t> norms(format_.slots);
    size_t j = 0;
    for (size_t i = 0; i < L.n; i++) {
        if (!keep[i]) continue;
        format_.layout.get_code(src.codes, i, code.data());
        for (int s = 0; s < format_.slots; s++) norms[s] = src.norm_element(s, i);
        put(out, j++, code.data(), norms.data(), src.ids[i]);
    }
    out.n = kept;
    const size_t removed = L.n - kept;
    L = std::move(out);
    return removed;
}

void RamLists::clear() {
    for (List& L : lists_) L = List();
}

size_t RamLists::memory_bytes() const {
    size_t b = 0;
    for (const List& L : lists_) b += L.codes.size() + L.norms.size() + L.ids.capacity() * 8;
    return b;
}

}  // namespace dpq::ivf
