#include "code_store.h"

#include <stdexcept>

namespace dpq {

CodeStore::CodeStore(int levels, int nbits, bool with_norms)
        : with_norms_(with_norms) {
    layout_.levels = levels;
    layout_.nbits = nbits;
}

void CodeStore::append(size_t n, const uint8_t* codes, const float* norms) {
    const int L = layout_.levels;
    const size_t nb = CodeLayout::nblocks(n_ + n);
    codes_.resize(nb * layout_.block_bytes(), 0);
    if (with_norms_) norms_.resize(nb * layout_.block_norms(), 0.f);
    for (size_t i = 0; i < n; i++) {
        const size_t j = n_ + i, slot = j % kBlockSize;
        uint8_t* blk = codes_.data() + layout_.block_offset(j);
        for (int l = 0; l < L; l++) layout_.set(blk, l, slot, codes[i * L + l]);
        if (with_norms_)
            for (int l = 0; l < L; l++) norms_[layout_.norm_offset(j, l + 1)] = norms[i * L + l];
    }
    n_ += n;
}

void CodeStore::get_code(size_t i, uint8_t* out) const {
    const uint8_t* blk = codes_.data() + layout_.block_offset(i);
    for (int l = 0; l < layout_.levels; l++) out[l] = layout_.get(blk, l, i % kBlockSize);
}

float CodeStore::norm(size_t i, int m) const {
    return norms_[layout_.norm_offset(i, m)];
}

void CodeStore::compact(const std::vector<bool>& keep) {
    const int L = layout_.levels;
    std::vector<uint8_t> codes;
    std::vector<float> norms;
    std::vector<uint8_t> code(L);
    for (size_t i = 0; i < n_; i++) {
        if (!keep[i]) continue;
        get_code(i, code.data());
        codes.insert(codes.end(), code.begin(), code.end());
        if (with_norms_)
            for (int m = 1; m <= L; m++) norms.push_back(norm(i, m));
    }
    clear();
    append(codes.size() / L, codes.data(), with_norms_ ? norms.data() : nullptr);
}

void CodeStore::clear() {
    n_ = 0;
    codes_.clear();
    codes_.shrink_to_fit();
    norms_.clear();
    norms_.shrink_to_fit();
}

size_t CodeStore::memory_bytes() const {
    return codes_.size() + norms_.size() * sizeof(float);
}

}  // namespace dpq
