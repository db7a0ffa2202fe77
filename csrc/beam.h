// Batched beam search over the levels of a progressive quantizer, scoring
// partial codes by the prefix-weighted objective
//     sum_m w_m ||x - sum_{l<=m} c_l||^2
// (w = (0, ..., 0, 1) is plain full-length error, as Faiss's RQ scores).
// A partial code of l levels is ranked by
//     sum_{m<l} w_m e_m + W_l e_l,   W_l = sum_{m>=l} w_m,
// i.e. the prefix errors it has fixed plus its current error standing in for
// the errors of the levels still to come.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace dpq {

class BeamSearch {
   public:
    // x: n x d (copied). weights: `levels` prefix weights, w_m >= 0.
    BeamSearch(size_t n, int d, int levels, int beam_size, const float* x, const float* weights);

    // Extends every partial code by one level with codebook C (K x d) whose
    // squared norms are cnorm. Multi-threaded; deterministic for any thread count.
    void step(const float* C, const float* cnorm, int K);

    size_t n() const { return n_; }
    int beam_size() const { return B_; }
    int level() const { return level_; }      // levels encoded so far
    int entries() const { return entries_; }  // live entries per vector (<= beam_size)
    // Residual of entry b of vector i (d floats), b < entries().
    const float* residual(size_t i, int b) const { return res_.data() + (i * B_ + b) * d_; }
    // Best entry of every vector after the last step: its codes (n x level())
    // and its weighted objective sum_{m<level} w_m e_m.
    void best(uint8_t* codes, float* objective) const;

   private:
    void step_batch(size_t i0, size_t i1, const float* C, const float* cnorm, int K, float* dots,
                    float* new_res, uint8_t* new_codes, float* new_err, float* new_acc) const;

    size_t n_;
    int d_, L_, B_;
    int level_ = 0, entries_ = 1;
    std::vector<float> w_, W_;     // prefix weights and their tail sums
    std::vector<float> res_;       // n x B x d residuals
    std::vector<uint8_t> codes_;   // n x B x L
    std::vector<float> err_;       // n x B: ||residual||^2
    std::vector<float> acc_;       // n x B: sum_{m<level} w_m e_m
};

// Codes (n x levels) of x by beam search under prefix weights, never worse
// (in that objective) than greedy encoding; objective (n, may be null)
// receives each code's weighted objective. C: levels x K x d.
// method: 0 residuals (BeamSearch), 1 codeword cross-product table, -1 auto.
void beam_encode(size_t n, int d, int levels, int K, const float* C, const float* x, int beam_size,
                 const float* weights, uint8_t* codes, float* objective, int method = -1);

// Weighted objective sum_m w_m ||x_i - sum_{l<=m} C_l[codes_il]||^2 of each vector.
void prefix_objective(size_t n, int d, int levels, int K, const float* C, const float* x,
                      const uint8_t* codes, const float* weights, float* objective);

}  // namespace dpq
