// The k best (distance, id) pairs of a scan whose best are re-scored
// (rescore.h): the same set TopK keeps, at amortized O(1) per candidate.
// Candidates at most the threshold go to a buffer of 2k; a full buffer is
// cut to its k best (nth_element) and the threshold becomes the k-th
// distance. Why: TopK's heap was a fifth of a 100-candidate shortlist search
// (perf, MiniLM, 16 levels x 4 bits); with this buffer the collection took
// 16.6% of the samples instead of 19.9%, within the shared machine's noise, so
// the gain is not established: a quiet-machine measurement decides between
// this and TopK (same results either way).
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

namespace dpq::scan {

class Shortlist {
   public:
    using Entry = std::pair<float, int64_t>;

    explicit Shortlist(size_t k) : k_(std::max<size_t>(k, 1)) { buf_.reserve(2 * k_); }

    // Candidates above it can never be kept (as TopK::threshold: ties may).
    float threshold() const { return threshold_; }
    // Takes a candidate at most threshold(); returns whether the threshold moved.
    bool push(float d, int64_t id) {
        buf_.emplace_back(d, id);
        if (buf_.size() < 2 * k_) return false;
        cut();
        return true;
    }
    void merge(const Shortlist& other) {
        for (const Entry& e : other.buf_)
            if (e.first <= threshold_) push(e.first, e.second);
    }
    // The k best (fewer if fewer were pushed), ascending by (distance, id).
    const std::vector<Entry>& sorted() {
        if (buf_.size() > k_) cut();
        std::sort(buf_.begin(), buf_.end(), better);
        return buf_;
    }

   private:
    // Ties go to the smaller id, as TopK's.
    static bool better(const Entry& a, const Entry& b) {
        return a.first < b.first || (a.first == b.first && a.second < b.second);
    }
    void cut() {
        std::nth_element(buf_.begin(), buf_.begin() + (k_ - 1), buf_.end(), better);
        buf_.resize(k_);
        threshold_ = buf_[k_ - 1].first;
    }

    size_t k_;
    std::vector<Entry> buf_;
    float threshold_ = std::numeric_limits<float>::infinity();
};

}  // namespace dpq::scan
