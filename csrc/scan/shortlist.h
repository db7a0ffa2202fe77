// The k best (distance, id) pairs of a scan whose best are re-scored
// (rescore.h): the same set TopK keeps. Short lists (k <= kHeapMax) are a
// heap, whose threshold follows every push; longer ones a buffer of 2k cut
// to its k best (nth_element) when full, amortized O(1) a candidate, whose
// threshold moves at each cut only. Measured on a quiet machine (MiniLM,
// 16 levels x 4 bits, no norm, 1 thread, alternating builds): the heap was
// faster at k = 10 in 4 runs of 4, the buffer at k = 100 in 3 of 3 (a heap
// push costs log k; a looser threshold admits more candidates).
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "../topk.h"

namespace dpq::scan {

class Shortlist {
   public:
    using Entry = std::pair<float, int64_t>;
    static constexpr size_t kHeapMax = 16;

    explicit Shortlist(size_t k) : k_(std::max<size_t>(k, 1)), heap_(k_) {
        if (k_ > kHeapMax) buf_.reserve(2 * k_);
    }

    // Candidates above it can never be kept (as TopK::threshold: ties may).
    float threshold() const { return k_ <= kHeapMax ? heap_.threshold() : threshold_; }
    // Takes a candidate at most threshold(); returns whether the threshold may have moved.
    bool push(float d, int64_t id) {
        if (k_ <= kHeapMax) return heap_.push(d, id);
        buf_.emplace_back(d, id);
        if (buf_.size() < 2 * k_) return false;
        cut();
        return true;
    }
    void merge(const Shortlist& other) {
        if (k_ <= kHeapMax) return heap_.merge(other.heap_);
        for (const Entry& e : other.buf_)
            if (e.first <= threshold_) push(e.first, e.second);
    }
    // The k best (fewer if fewer were pushed), ascending by (distance, id).
    const std::vector<Entry>& sorted() {
        if (k_ <= kHeapMax) {
            buf_.clear();
            for (const TopK::Entry& e : heap_.sorted()) buf_.emplace_back(e.dis, e.id);
            return buf_;
        }
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
    TopK heap_;               // k <= kHeapMax
    std::vector<Entry> buf_;  // k > kHeapMax; sorted()'s output either way
    float threshold_ = std::numeric_limits<float>::infinity();
};

}  // namespace dpq::scan
