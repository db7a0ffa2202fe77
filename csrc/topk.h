// Bounded selection of the k smallest (distance, id) pairs.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

namespace dpq {

class TopK {
   public:
    explicit TopK(size_t k) : k_(k) { heap_.reserve(k); }

    // The current admission threshold: a candidate must be at most this
    // (and, on a tie, have a smaller id than the worst kept).
    float threshold() const {
        return heap_.size() < k_ ? std::numeric_limits<float>::infinity() : heap_.front().first;
    }
    // Returns whether the candidate was kept.
    bool push(float dis, int64_t id) {
        if (heap_.size() < k_) {
            heap_.emplace_back(dis, id);
            std::push_heap(heap_.begin(), heap_.end(), WorseLast());
            return true;
        }
        if (!better(dis, id, heap_.front())) return false;
        std::pop_heap(heap_.begin(), heap_.end(), WorseLast());
        heap_.back() = {dis, id};
        std::push_heap(heap_.begin(), heap_.end(), WorseLast());
        return true;
    }
    void merge(const TopK& other) {
        for (const auto& e : other.heap_) push(e.first, e.second);
    }
    // Sorted best first; pads with (pad, -1) up to k.
    void extract(float* dis, int64_t* ids, float pad, float sign) {
        std::sort(heap_.begin(), heap_.end(), WorseLast());
        size_t i = 0;
        for (; i < heap_.size(); i++) dis[i] = sign * heap_[i].first, ids[i] = heap_[i].second;
        for (; i < k_; i++) dis[i] = pad, ids[i] = -1;
    }
    std::vector<std::pair<float, int64_t>> sorted() {
        std::sort(heap_.begin(), heap_.end(), WorseLast());
        return heap_;
    }

   private:
    using Entry = std::pair<float, int64_t>;
    // Ties are broken by the smaller id, as Faiss's flat indexes do.
    static bool better(float dis, int64_t id, const Entry& e) {
        return dis < e.first || (dis == e.first && id < e.second);
    }
    struct WorseLast {  // a functor, so that the heap operations inline it
        bool operator()(const Entry& a, const Entry& b) const { return better(a.first, a.second, b); }
    };

    size_t k_;
    std::vector<Entry> heap_;  // max-heap on (distance, id): worst on top
};

}  // namespace dpq
