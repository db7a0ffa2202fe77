// Bounded selection of the k smallest (distance, id) pairs.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

namespace dpq {

// A kept candidate: distance, id and, when Where is not void, where it is
// stored (the inverted file's list and offset), carried along but never compared.
template <class Where>
struct TopKEntry {
    float dis;
    int64_t id;
    Where where;
};
template <>
struct TopKEntry<void> {
    float dis;
    int64_t id;
};

// Bounded selection of the k smallest (distance, id) pairs; ties go to the
// smaller id, as Faiss's flat indexes break them, so that any split of the
// data merged by (distance, id) keeps the same ones.
template <class Where = void>
class BasicTopK {
   public:
    using Entry = TopKEntry<Where>;

    explicit BasicTopK(size_t k) : k_(k) { heap_.reserve(k); }
    // The current admission threshold: a candidate must be at most this
    // (and, on a tie, have a smaller id than the worst kept).
    float threshold() const {
        return heap_.size() < k_ ? std::numeric_limits<float>::infinity() : heap_.front().dis;
    }
    // Returns whether the candidate was kept.
    bool push(const Entry& e) {
        if (heap_.size() < k_) {
            heap_.push_back(e);
            std::push_heap(heap_.begin(), heap_.end(), WorseLast());
            return true;
        }
        if (!better(e, heap_.front())) return false;
        std::pop_heap(heap_.begin(), heap_.end(), WorseLast());
        heap_.back() = e;
        std::push_heap(heap_.begin(), heap_.end(), WorseLast());
        return true;
    }
    bool push(float dis, int64_t id) { return push(Entry{dis, id}); }
    void merge(const BasicTopK& other) {
        for (const Entry& e : other.heap_) push(e);
    }
    // Sorted best first; pads with (pad, -1) up to k.
    void extract(float* dis, int64_t* ids, float pad, float sign) {
        std::sort(heap_.begin(), heap_.end(), WorseLast());
        size_t i = 0;
        for (; i < heap_.size(); i++) dis[i] = sign * heap_[i].dis, ids[i] = heap_[i].id;
        for (; i < k_; i++) dis[i] = pad, ids[i] = -1;
    }
    const std::vector<Entry>& sorted() {
        std::sort(heap_.begin(), heap_.end(), WorseLast());
        return heap_;
    }

   private:
    static bool better(const Entry& a, const Entry& b) {
        return a.dis < b.dis || (a.dis == b.dis && a.id < b.id);
    }
    struct WorseLast {  // a functor, so that the heap operations inline it
        bool operator()(const Entry& a, const Entry& b) const { return better(a, b); }
    };
    size_t k_;
    std::vector<Entry> heap_;  // max-heap on (distance, id): worst on top
};

using TopK = BasicTopK<>;

}  // namespace dpq
