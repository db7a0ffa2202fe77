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

// The order of kept candidates: smaller distance first, ties to the smaller id.
template <class Entry>
bool ranks_before(const Entry& a, const Entry& b) {
    return a.dis < b.dis || (a.dis == b.dis && a.id < b.id);
}

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
    static bool better(const Entry& a, const Entry& b) { return ranks_before(a, b); }
    struct WorseLast {  // a functor, so that the heap operations inline it
        bool operator()(const Entry& a, const Entry& b) const { return better(a, b); }
    };
    size_t k_;
    std::vector<Entry> heap_;  // max-heap on (distance, id): worst on top
};

using TopK = BasicTopK<>;

// The k smallest of a dense array of n scores, as BasicTopK would keep them
// ((score, index) order, ties to the smaller index; NaNs never kept), for k
// much smaller than n. A heap pays a push for each of about
// k ln(n / k) improvements; this pays one vectorized pass. It splits the
// scores into g >= k interleaved groups (score j in group j % g): the k-th
// smallest group minimum T bounds the k-th smallest score (k groups hold a
// score <= T), so only scores <= T can be kept, and those few are sorted.
class SmallestOfDense {
   public:
    // Whether select() is the faster way for these sizes (else use a heap).
    static bool suits(size_t n, size_t k) { return k > 0 && n >= kGroupsPerK * 2 * k; }

    // Writes the indices of the k smallest of s[0..n), best first, padding
    // with -1 (and dis with +inf) where fewer than k are not NaN. Needs suits(n, k).
    void select(const float* s, size_t n, size_t k, float* dis, int64_t* ids) {
        const size_t g = kGroupsPerK * k, rows = n / g;
        mins_.assign(g, std::numeric_limits<float>::infinity());  // NaNs never enter: they fail <
        for (size_t r = 0; r < rows; r++) {
            const float* row = s + r * g;
            for (size_t j = 0; j < g; j++) mins_[j] = row[j] < mins_[j] ? row[j] : mins_[j];  // vectorized
        }
        for (size_t j = rows * g; j < n; j++)
            if (s[j] < mins_[j - rows * g]) mins_[j - rows * g] = s[j];
        std::nth_element(mins_.begin(), mins_.begin() + (k - 1), mins_.end());
        const float T = mins_[k - 1];
        kept_.clear();
        for (size_t j = 0; j < n; j++)
            if (s[j] <= T) kept_.push_back({s[j], int64_t(j)});
        const size_t m = std::min(k, kept_.size());
        std::partial_sort(kept_.begin(), kept_.begin() + m, kept_.end(),  // a lambda, so that it inlines
                          [](const TopKEntry<void>& a, const TopKEntry<void>& b) { return ranks_before(a, b); });
        size_t i = 0;
        for (; i < m; i++) dis[i] = kept_[i].dis, ids[i] = kept_[i].id;
        for (; i < k; i++) dis[i] = std::numeric_limits<float>::infinity(), ids[i] = -1;
    }

   private:
    // Groups per kept score: more groups make T tighter (fewer scores pass
    // it) and the minimum pass longer. 2, 4 and 8 ran within noise of each
    // other at n = 2048, k = 8 and 32 (IVF search on the patches).
    static constexpr size_t kGroupsPerK = 4;
    std::vector<float> mins_;
    std::vector<TopKEntry<void>> kept_;
};

}  // namespace dpq
