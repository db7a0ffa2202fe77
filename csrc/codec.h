// Codebooks of a progressive quantizer: encoding, decoding, prefix norms and
// the packed per-vector code format of the standalone codec (sa_encode).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace dpq {

// Rows of a row-major matrix (n x d) in the layout the lookup-table kernels
// read (scan/kernels.h DotsFn): kTablePanel rows at a time, each group stored
// transposed as d x kTablePanel, so that one vector load fetches coordinate t
// of kTablePanel consecutive rows. panels[(p * d + t) * kTablePanel + r] =
// M[p * kTablePanel + r][t]; the rows past n of the last panel are zero.
constexpr int kTablePanel = 32;
inline size_t table_panel_floats(size_t n, int d) { return (n + kTablePanel - 1) / kTablePanel * kTablePanel * d; }
void pack_table_panels(const float* M, size_t n, int d, float* panels);

class Codec {
   public:
    Codec(int d, int levels, int nbits);

    int d() const { return d_; }
    int levels() const { return levels_; }
    int nbits() const { return nbits_; }
    int K() const { return 1 << nbits_; }
    // Codeword k of level l (d floats).
    const float* codeword(int l, int k) const { return C_.data() + (size_t(l) * K() + k) * d_; }
    const std::vector<float>& codebooks() const { return C_; }
    // The levels * K codewords as table panels (a second copy of the
    // codebooks: the transposed layout makes the tables 2-3x faster).
    const float* table_panels() const { return panels_.data(); }
    void set_codebooks(const float* C);  // levels x K x d

    // Greedy residual encoding (beam_size <= 1) or beam search over levels,
    // which keeps the beam_size best partial codes by reconstruction error.
    // x: n x d, codes: n x levels (one index per byte). Multi-threaded.
    void encode(size_t n, const float* x, uint8_t* codes, int beam_size) const;
    // Sum of the first m codewords of each code. codes: n x levels.
    void decode(size_t n, const uint8_t* codes, int m, float* x) const;
    // Squared norm of every prefix reconstruction: norms[i][m-1] = ||r_m||^2.
    void prefix_norms(size_t n, const uint8_t* codes, float* norms) const;

    // Packed standalone code: level l's index at bit l * nbits, LSB first.
    size_t packed_size() const { return (size_t(levels_) * nbits_ + 7) / 8; }
    void pack(size_t n, const uint8_t* codes, uint8_t* packed) const;
    // Returns false if a packed code holds bits past the last level.
    bool unpack(size_t n, const uint8_t* packed, uint8_t* codes) const;

   private:
    void encode_greedy(const float* x, uint8_t* code, float* residual) const;
    void encode_beam(const float* x, uint8_t* code, int beam_size) const;

    int d_, levels_, nbits_;
    std::vector<float> C_;      // levels x K x d
    std::vector<float> cnorm_;  // levels x K: ||c||^2
    std::vector<float> panels_;  // C_ by pack_table_panels
};

// Codeword inner products that make an exact prefix norm a sum of table
// entries: norms (levels x K, ||c_lk||^2) and, for 4-bit codes, cross
// (<c_lk, c_l'k'> for l < l', at ((l' (l' - 1) / 2 + l) * 256 + 16 k + k');
// levels^2 / 2 x 256 floats; empty for 8-bit codes).
struct CodewordProducts {
    CodewordProducts() = default;
    explicit CodewordProducts(const Codec& codec);
    std::vector<float> norms, cross;
};

// ||r_M||^2 of one code (M >= 1): from CodewordProducts' tables where cross
// is given (4-bit codes; prefix_norm_from_products), else by decoding into r
// (d floats), summed in the order Codec::prefix_norms sums the float32 norms
// it stores.
float prefix_norm(const Codec& codec, const float* norms, const float* cross, const uint8_t* code, int M, float* r);

// ||r_M||^2 of a 4-bit code from CodewordProducts' tables:
// sum_l ||c_l||^2 + 2 sum_{l < l'} <c_l, c_l'>, summed in this one order.
inline float prefix_norm_from_products(const float* norms, const float* cross, const uint8_t* code, int M) {
    float own = 0, sum = 0;
    for (int l2 = 0; l2 < M; l2++) {
        own += norms[l2 * 16 + code[l2]];
        const float* t = cross + size_t(l2) * (l2 - 1) / 2 * 256 + code[l2];
        for (int l = 0; l < l2; l++) sum += t[l * 256 + code[l] * 16];
    }
    return own + 2.f * sum;
}

}  // namespace dpq
