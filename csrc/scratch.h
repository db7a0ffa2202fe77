// Scratch buffers that every use overwrites before reading: not zeroed
// (lookup tables are megabytes per block of queries).
#pragma once

#include <cstddef>
#include <memory>

namespace dpq {

template <class T>
std::unique_ptr<T[]> uninitialized(size_t n) {
    return std::unique_ptr<T[]>(new T[n]);
}

}  // namespace dpq
