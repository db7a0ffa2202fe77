// How an L2 IndexDPQ keeps the prefix norms ||r_m||^2 that its distances
//   ||q - r_m||^2 = ||q||^2 - 2 <q, r_m> + ||r_m||^2
// need: not at all, as float32, or as 4- or 8-bit non-uniform codes (one
// 1-D k-means quantizer per prefix, as Faiss's cqint norms), and for every
// prefix or a declared set of prefixes only. A scan at a prefix without an
// exact norm ranks by what is kept and re-scores a shortlist exactly.
// Codes keep only the cross terms ||r_m||^2 - sum_{l<m} ||c_l||^2: the own
// terms ||c_l||^2 are exact in the scan's lookup tables (IndexDPQ::norm_terms).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "code_layout.h"

namespace dpq {

enum class NormKind : int32_t { kNone = 0, kFloat32 = 1, kBits8 = 2, kBits4 = 3 };

std::string norm_kind_name(NormKind kind);
// The kind norm_kind_name calls `name`; std::invalid_argument naming `who` otherwise.
NormKind norm_kind_from_name(const std::string& name, const std::string& who);
// Bits a stored norm takes: 0, 32, 8 or 4.
int norm_bits(NormKind kind);

struct NormSpec {
    NormKind kind = NormKind::kNone;
    std::vector<int> prefixes;  // ascending, unique, in [1, levels]; empty iff kind is kNone

    // Every prefix 1..levels (none for kNone).
    static NormSpec all(NormKind kind, int levels);
    // Throws std::invalid_argument naming the problem.
    void check(int levels) const;
    // Position of prefix m among the stored prefixes, or -1.
    int slot(int m) const;
    bool quantized() const { return kind == NormKind::kBits8 || kind == NormKind::kBits4; }
    // Codewords of a quantizer: 16 or 256 (0 when not quantized).
    int K() const { return kind == NormKind::kBits8 ? 256 : kind == NormKind::kBits4 ? 16 : 0; }
    // The spec of an index truncated to m levels: the prefixes <= m.
    NormSpec truncated(int m) const;
    bool operator==(const NormSpec& o) const { return kind == o.kind && prefixes == o.prefixes; }
};

// One non-uniform scalar quantizer per stored prefix (quantized kinds only):
// K centroids, ascending; a norm codes to its nearest centroid.
class NormQuantizer {
   public:
    explicit NormQuantizer(const NormSpec& spec) : spec_(spec) {}

    const NormSpec& spec() const { return spec_; }
    bool trained() const { return !spec_.quantized() || !centroids_.empty(); }
    // norms: n x levels values to code (IndexDPQ::norm_terms). 1-D
    // k-means (Faiss) per stored prefix; fewer distinct values than K are
    // kept as they are.
    void train(size_t n, int levels, const float* norms);
    // prefixes.size() x K, ascending per prefix; empty while untrained.
    const std::vector<float>& centroids() const { return centroids_; }
    void set_centroids(const std::vector<float>& c);  // throws if not ascending and finite
    void reset() { centroids_.clear(); }

    // Slot j = spec().slot(m).
    const float* table(int j) const { return centroids_.data() + size_t(j) * spec_.K(); }
    uint8_t encode(int j, float v) const;
    // The values of codes i0..i0+n-1 of a slot-j column laid out as `column`.
    void decode(int j, const NormColumn& column, const uint8_t* col, size_t i0, size_t n, float* out) const;
    // How far below centroid c of slot j a value that encode() gave code c
    // may lie: half the gap to the next lower centroid (up to float
    // rounding); infinity for the lowest centroid.
    float below(int j, int c) const;

   private:
    NormSpec spec_;
    std::vector<float> centroids_;
};

}  // namespace dpq
