// IndexDPQ::get_distance_computer (index_dpq.h) and its computer.
#include <shared_mutex>
#include <vector>

#include "index_dpq.h"
#include "scan/rescore.h"
#include "scan/tables.h"
#include "unit_rows.h"

namespace dpq {

namespace {

class DPQDistanceComputer final : public faiss::DistanceComputer {
   public:
    explicit DPQDistanceComputer(const IndexDPQ& index)
            : index_(index), lock_(index.read_lock()), l2_(index.metric_type == faiss::METRIC_L2),
              rescore_(index.scan_spec(), index.search_levels.load()),
              lut_(size_t(rescore_.levels()) * index.codec().K()), code_(index.levels()), a_(index.d), b_(index.d) {}

    // A cosine index's query is scaled to unit norm, as its searches scale
    // it; a zero query stays zero (Faiss calls this inside OpenMP regions,
    // which an exception must not leave).
    void set_query(const float* x) override {
        if (index_.cosine()) {
            unit_.assign(x, x + index_.d);
            project_to_sphere(1, index_.d, unit_.data());
            x = unit_.data();
        }
        bias_ = scan::compute_lut(index_.codec(), l2_, x, rescore_.levels(), lut_.data());
    }

    // Faiss's distance computers return similarities for inner product.
    float operator()(faiss::idx_t i) override {
        const float v = rescore_(size_t(i), lut_.data(), bias_);
        return l2_ ? v : -v;
    }

    float symmetric_dis(faiss::idx_t i, faiss::idx_t j) override {
        reconstruct(i, a_.data());
        reconstruct(j, b_.data());
        float s = 0;
        for (size_t t = 0; t < a_.size(); t++) s += l2_ ? (a_[t] - b_[t]) * (a_[t] - b_[t]) : a_[t] * b_[t];
        return s;
    }

   private:
    void reconstruct(faiss::idx_t i, float* out) {
        index_.store().get_code(size_t(i), code_.data());
        index_.decode(1, code_.data(), rescore_.levels(), out);
    }

    const IndexDPQ& index_;
    std::shared_lock<std::shared_mutex> lock_;
    bool l2_;
    scan::Rescorer rescore_;
    float bias_ = 0;
    std::vector<float> lut_;
    std::vector<uint8_t> code_;
    std::vector<float> a_, b_, unit_;
};

}  // namespace

faiss::DistanceComputer* IndexDPQ::get_distance_computer() const {
    require_trained();
    return new DPQDistanceComputer(*this);
}

}  // namespace dpq
