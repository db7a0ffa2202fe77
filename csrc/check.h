// The one way C++ code in pyfaiss-dpq refuses bad input, in the style of
// Faiss's FAISS_THROW_IF_NOT_FMT:
//
//     DPQ_CHECK(k > 0, std::invalid_argument, "IndexDPQ.search: k must be positive, got %ld", long(k));
//
// throws the given exception with a printf-formatted message when the
// condition is false. The exception type says what Python sees through
// pybind11 (module.cpp): std::invalid_argument -> ValueError,
// std::out_of_range -> IndexError, std::runtime_error -> RuntimeError
// (through Faiss's SWIG wrappers every one is a RuntimeError, as for Faiss's
// own indexes). Each rule is written once, here on the C++ side; Python only
// converts arrays.
#pragma once

#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace dpq {

__attribute__((format(printf, 1, 2))) inline std::string check_message(const char* fmt, ...) {
    va_list args;
    va_start(args, fmt);
    va_list again;
    va_copy(again, args);
    const int n = std::vsnprintf(nullptr, 0, fmt, args);
    va_end(args);
    std::string out(n > 0 ? size_t(n) : 0, '\0');
    if (n > 0) std::vsnprintf(out.data(), out.size() + 1, fmt, again);
    va_end(again);
    return out;
}

}  // namespace dpq

#define DPQ_CHECK(condition, Exception, ...)                         \
    do {                                                             \
        if (!(condition)) throw Exception(::dpq::check_message(__VA_ARGS__)); \
    } while (false)

namespace dpq {

// Throws std::invalid_argument naming `what` and the first non-finite row
// when x (n vectors of d floats) holds a NaN or an infinity. The sum of all
// values is finite exactly when no value is NaN or infinite, barring overflow:
// one cheap pass answers for clean data, and only a non-finite sum pays for
// the row-by-row search (which may then find nothing: a sum that overflowed).
inline void check_finite(int64_t n, int d, const float* x, const char* what) {
    const size_t count = size_t(n) * size_t(d);
    // 16 independent partial sums: the loop vectorizes without reordering
    // any one sum (a single accumulator would be one long dependency chain).
    float part[16] = {};
    size_t i = 0;
    for (; i + 16 <= count; i += 16)
        for (int j = 0; j < 16; j++) part[j] += x[i + j];
    float sum = 0;
    for (; i < count; i++) sum += x[i];
    for (float s : part) sum += s;
    if (std::isfinite(sum)) return;
    for (i = 0; i < count; i++)
        DPQ_CHECK(std::isfinite(x[i]), std::invalid_argument, "%s: input contains NaN or infinity (first at row %zu)", what,
                  i / size_t(d));
}

}  // namespace dpq
