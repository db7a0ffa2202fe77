#include "code_store.h"

#include <cstring>
#include <stdexcept>

namespace dpq {

CodeStore::CodeStore(int levels, int nbits, const NormSpec& norms)
        : spec_(norms), norms_(norms.prefixes.size()) {
    layout_.levels = levels;
    layout_.nbits = nbits;
    column_.bits = norm_bits(norms.kind);
}

void CodeStore::resize(size_t n) {
    const size_t nb = CodeLayout::nblocks(n);
    codes_.resize(nb * layout_.block_bytes(), 0);
    for (auto& col : norms_) col.resize(nb * column_.block_bytes(), 0);
}

void CodeStore::append(size_t n, const uint8_t* codes, const float* norms, const NormQuantizer& q) {
    const int L = layout_.levels;
    resize(n_ + n);
    for (size_t i = 0; i < n; i++) {
        const size_t j = n_ + i, slot = j % kBlockSize;
        uint8_t* blk = codes_.data() + layout_.block_offset(j);
        for (int l = 0; l < L; l++) layout_.set(blk, l, slot, codes[i * L + l]);
        for (size_t p = 0; p < norms_.size(); p++) {
            const float v = norms[i * L + spec_.prefixes[p] - 1];
            uint32_t e;
            if (spec_.quantized()) {
                e = q.encode(int(p), v);
            } else {
                std::memcpy(&e, &v, 4);
            }
            column_.set(norms_[p].data(), j, e);
        }
    }
    n_ += n;
}

void CodeStore::get_code(size_t i, uint8_t* out) const {
    layout_.get_code(codes_.data(), i, out);
}

float CodeStore::norm_value(size_t i, int j, const NormQuantizer& q) const {
    if (!spec_.quantized()) return norm_float(i, j);
    return q.table(j)[column_.get(norms_[j].data(), i)];
}

void CodeStore::norm_values(size_t i0, size_t n, int j, const NormQuantizer& q, float* out) const {
    const uint8_t* col = norms_[j].data();
    if (!spec_.quantized()) {
        std::memcpy(out, col + 4 * i0, 4 * n);
    } else {
        q.decode(j, column_, col, i0, n, out);
    }
}

void CodeStore::compact(const std::vector<bool>& keep) {
    CodeStore out(layout_.levels, layout_.nbits, spec_);
    size_t kept = 0;
    for (size_t i = 0; i < n_; i++) kept += keep[i];
    out.resize(kept);
    std::vector<uint8_t> code(layout_.levels);
    size_t j = 0;
    for (size_t i = 0; i < n_; i++) {
        if (!keep[i]) continue;
        get_code(i, code.data());
        uint8_t* blk = out.codes_.data() + layout_.block_offset(j);
        for (int l = 0; l < layout_.levels; l++) layout_.set(blk, l, j % kBlockSize, code[l]);
        for (size_t p = 0; p < norms_.size(); p++)
            column_.set(out.norms_[p].data(), j, column_.get(norms_[p].data(), i));
        j++;
    }
    out.n_ = kept;
    *this = std::move(out);
}

void CodeStore::clear() {
    n_ = 0;
    codes_.clear();
    codes_.shrink_to_fit();
    for (auto& col : norms_) {
        col.clear();
        col.shrink_to_fit();
    }
}

size_t CodeStore::memory_bytes() const {
    size_t b = codes_.size();
    for (const auto& col : norms_) b += col.size();
    return b;
}

}  // namespace dpq
