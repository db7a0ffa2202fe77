// Little helpers that write and read the fields of our index files in
// memory: a growing byte buffer, and a bounds-checked reader whose errors
// name the file kind ("IndexDPQ", "IndexIVFDPQ") and the field.
#pragma once

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace dpq {

class ByteWriter {
   public:
    template <class T>
    void put(T v) { bytes(&v, sizeof v); }
    void bytes(const void* p, size_t n) {
        auto* b = static_cast<const uint8_t*>(p);
        out.insert(out.end(), b, b + n);
    }
    std::vector<uint8_t> out;
};

class ByteReader {
   public:
    ByteReader(const char* kind, const uint8_t* p, size_t n) : kind_(kind), p_(p), left_(n) {}
    template <class T>
    T get(const char* what) {
        T v;
        bytes(&v, sizeof v, what);
        return v;
    }
    void bytes(void* dst, size_t n, const char* what) {
        if (n > left_) throw std::invalid_argument(std::string(kind_) + " file truncated while reading " + what);
        std::memcpy(dst, p_, n);
        p_ += n;
        left_ -= n;
    }
    size_t left() const { return left_; }

   private:
    const char* kind_;
    const uint8_t* p_;
    size_t left_;
};

// Throws std::invalid_argument naming the file kind and what is inconsistent.
inline void require_consistent(bool ok, const char* kind, const std::string& what) {
    if (!ok) throw std::invalid_argument(std::string(kind) + " file is inconsistent: " + what);
}

}  // namespace dpq
