// Inverted lists read in place from a memory-mapped IndexIVFDPQ file
// (ivf_file.h): read-only; each list's checksum is checked on its first
// read (then remembered) and again by verify().
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "list_store.h"

namespace dpq::ivf {

// A read-only mapping of a whole file, unmapped when the last user goes.
class Mapping {
   public:
    explicit Mapping(const std::string& path);  // throws std::runtime_error naming the file
    ~Mapping();
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    const uint8_t* data() const { return data_; }
    size_t size() const { return size_; }

   private:
    const uint8_t* data_ = nullptr;
    size_t size_ = 0;
};

struct ListEntry {
    uint64_t offset = 0, n = 0;
    uint32_t crc = 0;
};

class MappedLists final : public ListStore {
   public:
    MappedLists(std::shared_ptr<const Mapping> map, std::vector<ListEntry> entries, const ListFormat& format);

    size_t nlist() const override { return entries_.size(); }
    size_t list_size(size_t l) const override { return entries_[l].n; }
    ListRef list(size_t l) const override;
    bool writable() const override { return false; }
    void verify(size_t l) const override;

   private:
    std::shared_ptr<const Mapping> map_;
    std::vector<ListEntry> entries_;
    ListFormat format_;
    std::unique_ptr<std::atomic<bool>[]> checked_;
};

}  // namespace dpq::ivf
