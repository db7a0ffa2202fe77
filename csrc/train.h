// Torch-free training of the codebooks of a progressive quantizer.
//
// 1. Progressive initialisation on beam-aware residuals (as Faiss's RQ):
//    level l is k-means on the residuals that a beam search over levels < l
//    leaves, then the beam advances by level l.
// 2. Rounds of (a) beam encoding of the training set under the prefix
//    weights, keeping a vector's previous code where it scores better, and
//    (b) the joint least-squares update of every codebook:
//        min_C  sum_i sum_m w_m ||x_i - sum_{l<=m} C_l[b_il]||^2
//    one linear system of size levels * K shared by all d dimensions.
// Both steps never increase the weighted objective, so neither do rounds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace dpq {

// Knobs of the trainer, in the style of faiss::ClusteringParameters.
struct TrainParams {
    int rounds = 1;                     // beam-encode + least-squares rounds after the initialisation (more measured no better held out)
    int beam_size = 5;                  // beam width of training (initialisation and rounds)
    std::vector<float> prefix_weights;  // w_1..w_L (normalised to sum 1); empty: default_prefix_weights
    int64_t seed = 1234;                // k-means samples and the vectors that start every level's k-means
    int kmeans_max_points_per_centroid = 256;  // k-means subsamples to K * this many residuals (as Faiss)
    // Levels l >= L / 2, which only the longer half of the prefixes use, see
    // at most this many residuals (and no more than the first half's K *
    // kmeans_max_points_per_centroid); 0: no further limit.
    int tail_kmeans_max_points = 8192;
    float ridge = 1e-3f;                // pull toward the previous codebooks, relative to the mean diagonal
    bool verbose = false;               // progress bar and objective per round on stderr

    // Throws std::invalid_argument naming the bad field (levels: the model's, or 0 to skip that check).
    void validate(int levels = 0) const;
};

// The default prefix weights for `levels` levels (see train.cpp for the measurement behind them).
std::vector<float> default_prefix_weights(int levels);
// params.prefix_weights (or the default) normalised to sum 1.
std::vector<float> resolve_prefix_weights(const TrainParams& params, int levels);

// Trains codebooks (levels x K x d, K = 2^nbits) on x (n x d, n >= K).
std::vector<float> train_codebooks(size_t n, int d, const float* x, int levels, int nbits,
                                   const TrainParams& params);

// The least-squares step alone: codebooks C (levels x K x d) minimising the
// weighted objective for fixed codes (n x levels), plus ridge * mean(diag) *
// ||C - C_prev||^2 (which keeps unused codewords where they were).
void solve_codebooks(size_t n, int d, const float* x, int levels, int K, const uint8_t* codes,
                     const float* weights, float ridge, const float* C_prev, float* C);

}  // namespace dpq
