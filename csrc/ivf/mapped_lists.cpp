#include "mapped_lists.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "../check.h"
#include "crc32.h"

namespace dpq::ivf {

Mapping::Mapping(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    DPQ_CHECK(fd >= 0, std::runtime_error, "cannot open %s: %s", path.c_str(), std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const int err = errno;
        ::close(fd);
        DPQ_CHECK(false, std::runtime_error, "cannot stat %s: %s", path.c_str(), std::strerror(err));
    }
    size_ = size_t(st.st_size);
    if (size_ > 0) {
        void* p = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
        const int err = errno;
        ::close(fd);
        DPQ_CHECK(p != MAP_FAILED, std::runtime_error, "cannot map %s: %s", path.c_str(), std::strerror(err));
        data_ = static_cast<const uint8_t*>(p);
        // A search reads a few lists: no read-ahead of their neighbours, so
        // that resident pages stay those of the lists searched.
        ::madvise(p, size_, MADV_RANDOM);
    } else {
        ::close(fd);
    }
}

Mapping::~Mapping() {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

MappedLists::MappedLists(std::shared_ptr<const Mapping> map, std::vector<ListEntry> entries,
                         const ListFormat& format)
        : map_(std::move(map)), entries_(std::move(entries)), format_(format),
          checked_(new std::atomic<bool>[entries_.size()]) {
    for (size_t l = 0; l < entries_.size(); l++) checked_[l] = false;
}

void MappedLists::verify(size_t l) const {
    const ListEntry& e = entries_[l];
    const uint32_t crc = crc32(map_->data() + e.offset, format_.bytes(e.n));
    DPQ_CHECK(crc == e.crc, std::runtime_error,
              "IndexIVFDPQ file: list %zu is corrupt (checksum mismatch); the file was damaged after it was written",
              l);
    checked_[l] = true;
}

ListRef MappedLists::list(size_t l) const {
    if (!checked_[l].load(std::memory_order_acquire)) verify(l);
    return format_.at(map_->data() + entries_[l].offset, entries_[l].n);
}

}  // namespace dpq::ivf
