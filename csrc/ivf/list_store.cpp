#include "list_store.h"

#include <algorithm>
#include <cstring>

namespace dpq::ivf {

RamLists::RamLists(size_t nlist, const CodeLayout& layout, const NormColumn& column, int norm_slots)
        : layout_(layout), column_(column), slots_(norm_slots), lists_(nlist) {}

ListRef RamLists::list(size_t l) const {
    const List& L = lists_[l];
    return {L.n, L.codes.data(), L.norms.data(), column_bytes(L), column_, L.ids.data()};
}

// Capacity grows by doubling, so that the norm columns (whose stride is the
// capacity) are re-laid out O(log n) times per list.
void RamLists::reserve(List& L, size_t n) {
    const size_t need = CodeLayout::nblocks(n);
    if (need <= L.cap_blocks) return;
    const size_t cap = std::max(need, 2 * L.cap_blocks);
    L.codes.resize(cap * layout_.block_bytes(), 0);
    const size_t old_bytes = column_bytes(L), new_bytes = cap * column_.block_bytes();
    std::vector<uint8_t> norms(size_t(slots_) * new_bytes, 0);
    for (int j = 0; j < slots_; j++)
        std::copy_n(L.norms.data() + size_t(j) * old_bytes, old_bytes, norms.data() + size_t(j) * new_bytes);
    L.norms.swap(norms);
    L.cap_blocks = cap;
    L.ids.reserve(cap * kBlockSize);
}

void RamLists::put(List& L, size_t i, const uint8_t* code, const uint32_t* norms, int64_t id) const {
    uint8_t* blk = L.codes.data() + layout_.block_offset(i);
    for (int l = 0; l < layout_.levels; l++) layout_.set(blk, l, i % kBlockSize, code[l]);
    for (int j = 0; j < slots_; j++) column_.set(L.norms.data() + size_t(j) * column_bytes(L), i, norms[j]);
    L.ids[i] = id;
}

void RamLists::append(size_t l, size_t n, const uint8_t* codes, const uint32_t* norms, const int64_t* ids) {
    List& L = lists_[l];
    reserve(L, L.n + n);
    L.ids.resize(L.n + n);
    for (size_t i = 0; i < n; i++)
        put(L, L.n + i, codes + i * layout_.levels, norms + i * slots_, ids[i]);
    L.n += n;
}

void RamLists::append(size_t l, const ListRef& src) {
    std::vector<uint8_t> code(layout_.levels);
    std::vector<uint32_t> norms(slots_);
    List& L = lists_[l];
    reserve(L, L.n + src.n);
    L.ids.resize(L.n + src.n);
    for (size_t i = 0; i < src.n; i++) {
        layout_.get_code(src.codes, i, code.data());
        for (int j = 0; j < slots_; j++) norms[j] = src.norm_element(j, i);
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
    std::vector<uint8_t> code(layout_.levels);
    std::vector<uint32_t> norms(slots_);
    size_t j = 0;
    for (size_t i = 0; i < L.n; i++) {
        if (!keep[i]) continue;
        layout_.get_code(src.codes, i, code.data());
        for (int s = 0; s < slots_; s++) norms[s] = src.norm_element(s, i);
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
