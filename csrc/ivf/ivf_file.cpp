#include "ivf_file.h"

#include <cstring>
#include <stdexcept>

#include "../byte_io.h"
#include "../serialize.h"
#include "crc32.h"
#include "mapped_lists.h"

namespace dpq::ivf {

namespace {

constexpr size_t kPreamble = 8 + 4 + 8 + 4;  // magic, version, header length, header crc
constexpr size_t kAlign = 64;
constexpr uint32_t kFirstIvfVersion = 2;  // files of older versions hold no IndexIVFDPQ

size_t aligned(size_t x) { return (x + kAlign - 1) / kAlign * kAlign; }

constexpr const char* kKind = "IndexIVFDPQ";

void require(bool ok, const std::string& what) { require_consistent(ok, kKind, what); }

struct Parsed {
    std::unique_ptr<IndexIVFDPQ> index;
    std::vector<ListEntry> entries;
    ListFormat format;
};

// Checks the preamble and the header's checksum, then parses the header.
Parsed parse(const uint8_t* data, size_t size, std::string* quantizer_bytes) {
    if (size < kPreamble || std::memcmp(data, kIvfMagic, 8) != 0)
        throw std::invalid_argument("not an IndexIVFDPQ file (wrong magic bytes or too short)");
    uint32_t version, hcrc;
    uint64_t hlen;
    std::memcpy(&version, data + 8, 4);
    std::memcpy(&hlen, data + 12, 8);
    std::memcpy(&hcrc, data + 20, 4);
    if (version < kFirstIvfVersion || version > kFormatVersion)
        throw std::invalid_argument("IndexIVFDPQ format version " + std::to_string(version) +
                                    " is not supported (this build reads versions " +
                                    std::to_string(kFirstIvfVersion) + " to " + std::to_string(kFormatVersion) + ")");
    if (hlen > size - kPreamble) throw std::invalid_argument("IndexIVFDPQ file truncated: the header is incomplete");
    const uint8_t* h = data + kPreamble;
    if (crc32(h, hlen) != hcrc)
        throw std::invalid_argument("IndexIVFDPQ file header checksum mismatch: the file is corrupt");
    ByteReader r(kKind, h, hlen);
    const auto d = r.get<int32_t>("d");
    const auto metric = r.get<int32_t>("metric");
    const auto nlist = r.get<uint64_t>("nlist");
    const auto levels = r.get<int32_t>("levels");
    const auto nbits = r.get<int32_t>("nbits");
    const auto has_cb = r.get<uint8_t>("codebook flag");
    const auto has_c = r.get<uint8_t>("centroid flag");
    const auto search_levels = r.get<int32_t>("search_levels");
    const auto nprobe = r.get<uint64_t>("nprobe");
    const auto beam_size = r.get<int32_t>("beam_size");
    const auto np = r.get<int32_t>("norm prefix count");
    require(d > 0 && d <= (1 << 20), "d");
    require(nlist >= 1 && nlist <= (uint64_t(1) << 31), "nlist");
    require(levels >= 1 && levels <= 255 && (nbits == 4 || nbits == 8), "levels or nbits");
    require(has_cb <= 1 && has_c <= 1, "flags");
    require(search_levels >= 1 && search_levels <= levels && nprobe >= 1 && beam_size >= 1 && beam_size <= 1024,
            "search knobs");
    require(np >= 0 && np <= levels, "norm prefix count");
    NormSpec ns;
    ns.kind = np ? NormKind::kFloat32 : NormKind::kNone;
    ns.prefixes.resize(size_t(np));
    for (auto& p : ns.prefixes) p = r.get<int32_t>("norm prefix");
    // Version 2 had no cosine indexes.
    const auto cosine = version >= 3 ? r.get<uint8_t>("cosine flag") : uint8_t(0);
    require(cosine <= 1, "cosine flag");
    // Before version 4, L2 norms were ||c + r_m||^2.
    const auto relative = version >= 4 ? r.get<uint8_t>("relative norms flag") : uint8_t(0);
    require(relative <= 1 && (!relative || metric == faiss::METRIC_L2), "relative norms flag");
    // Before version 5, norms were float32.
    if (version >= 5) {
        const auto kind = r.get<int32_t>("norm kind");
        require(kind >= int32_t(NormKind::kNone) && kind <= int32_t(NormKind::kBits4) &&
                        (kind == int32_t(NormKind::kNone)) == (np == 0),
                "norm kind");
        ns.kind = NormKind(kind);
        require(!ns.quantized() || relative, "relative norms flag of quantized norms");
    }
    Parsed out;
    try {
        out.index = std::make_unique<IndexIVFDPQ>(nullptr, d, size_t(nlist), levels, nbits, faiss::MetricType(metric),
                                                  ns, cosine);
    } catch (const std::invalid_argument& e) {
        require(false, e.what());
    }
    IndexIVFDPQ& ix = *out.index;
    ix.set_relative_norms(relative);
    std::vector<float> norm_centroids;  // set once the codebooks are (setting those resets them)
    if (ns.quantized() && r.get<uint8_t>("norm centroid flag")) {
        const size_t n = ns.prefixes.size() * size_t(ns.K());
        require(n * 4 <= r.left(), "norm centroids larger than the header");
        norm_centroids.resize(n);
        r.bytes(norm_centroids.data(), n * 4, "norm centroids");
    }
    if (has_cb) {
        const size_t n = size_t(levels) * (size_t(1) << nbits) * size_t(d);
        require(n * 4 <= r.left(), "codebooks larger than the header");
        std::vector<float> C(n);
        r.bytes(C.data(), n * 4, "codebooks");
        ix.set_codebooks(C.data());
    }
    if (has_c) {
        const size_t n = size_t(nlist) * size_t(d);
        require(n * 4 <= r.left(), "centroids larger than the header");
        std::vector<float> c(n);
        r.bytes(c.data(), n * 4, "centroids");
        ix.set_centroids(c.data());
    }
    if (!norm_centroids.empty()) {
        try {
            ix.set_norm_centroids(norm_centroids);
        } catch (const std::invalid_argument& e) {
            require(false, e.what());
        }
    }
    ix.search_levels = search_levels;
    ix.nprobe = size_t(nprobe);
    ix.beam_size = beam_size;
    const auto qlen = r.get<uint64_t>("quantizer length");
    require(qlen <= r.left(), "quantizer larger than the header");
    quantizer_bytes->resize(size_t(qlen));
    r.bytes(quantizer_bytes->data(), size_t(qlen), "quantizer");
    const auto ntotal = r.get<uint64_t>("ntotal");
    require(r.left() == nlist * 24, "list table size");
    out.format = ix.list_format();
    out.entries.resize(size_t(nlist));
    uint64_t sum = 0;
    const size_t lists_start = aligned(kPreamble + hlen);
    for (auto& e : out.entries) {
        e.offset = r.get<uint64_t>("list offset");
        e.n = r.get<uint64_t>("list size");
        e.crc = r.get<uint32_t>("list crc");
        r.get<uint32_t>("padding");
        require(e.n < (uint64_t(1) << 32), "list size");
        require(e.offset % kAlign == 0 && e.offset >= lists_start && e.offset <= size &&
                        out.format.bytes(size_t(e.n)) <= size - e.offset,
                "a list lies outside the file");
        sum += e.n;
    }
    require(sum == ntotal, "list sizes do not add up to ntotal");
    require(ntotal == 0 || (has_cb && has_c), "vectors stored without codebooks or centroids");
    require(ntotal == 0 || ix.norm_quantizer().trained(), "norm codes stored without their centroids");
    return out;
}

}  // namespace

std::vector<uint8_t> serialize_ivf(const IndexIVFDPQ& index, const std::string& quantizer_bytes) {
    auto lock = index.read_lock();
    const ListStore& lists = index.lists();
    const size_t nlist = index.nlist();
    const ListFormat format = index.list_format();
    ByteWriter h;
    h.put<int32_t>(index.d);
    h.put<int32_t>(int32_t(index.metric_type));
    h.put<uint64_t>(nlist);
    h.put<int32_t>(index.levels());
    h.put<int32_t>(index.nbits());
    h.put<uint8_t>(index.has_codebooks());
    h.put<uint8_t>(index.has_centroids());
    h.put<int32_t>(index.search_levels);
    h.put<uint64_t>(index.nprobe);
    h.put<int32_t>(index.beam_size);
    h.put<int32_t>(format.slots);
    for (int p : index.norm_spec().prefixes) h.put<int32_t>(p);
    h.put<uint8_t>(index.cosine());
    h.put<uint8_t>(index.relative_norms());
    h.put<int32_t>(int32_t(index.norm_spec().kind));
    if (index.norm_spec().quantized()) {
        const std::vector<float>& c = index.norm_quantizer().centroids();
        h.put<uint8_t>(!c.empty());
        h.bytes(c.data(), c.size() * 4);
    }
    if (index.has_codebooks()) h.bytes(index.codec().codebooks().data(), index.codec().codebooks().size() * 4);
    if (index.has_centroids()) h.bytes(index.centroids().data(), index.centroids().size() * 4);
    h.put<uint64_t>(quantizer_bytes.size());
    h.bytes(quantizer_bytes.data(), quantizer_bytes.size());
    h.put<uint64_t>(uint64_t(index.ntotal));
    // The list table: offsets follow from the header's length, known now.
    const size_t hlen = h.out.size() + nlist * 24;
    size_t offset = aligned(kPreamble + hlen);
    std::vector<ListRef> refs(nlist);
    std::vector<size_t> offsets(nlist);
    for (size_t l = 0; l < nlist; l++) {
        refs[l] = lists.list(l);
        offsets[l] = offset;
        offset = aligned(offset + format.bytes(refs[l].n));
    }
    std::vector<uint8_t> out(offset, 0);
    for (size_t l = 0; l < nlist; l++) {  // each list as a mapped file lays it out
        const ListRef& L = refs[l];
        const size_t nb = CodeLayout::nblocks(L.n), column_bytes = nb * format.column.block_bytes();
        uint8_t* p = out.data() + offsets[l];
        if (L.n) {  // an empty list's arrays may be null
            std::memcpy(p, L.codes, nb * format.layout.block_bytes());
            p += nb * format.layout.block_bytes();
            // Whole blocks: a 4-bit column's last block holds slots 16.. in high nibbles.
            for (int j = 0; j < format.slots; j++, p += column_bytes) std::memcpy(p, L.norm_column(j), column_bytes);
            std::memcpy(p, L.ids, L.n * 8);
        }
        h.put<uint64_t>(offsets[l]);
        h.put<uint64_t>(L.n);
        h.put<uint32_t>(crc32(out.data() + offsets[l], format.bytes(L.n)));
        h.put<uint32_t>(0);
    }
    std::memcpy(out.data(), kIvfMagic, 8);
    const uint32_t version = kFormatVersion, hcrc = crc32(h.out.data(), h.out.size());
    const uint64_t hl = h.out.size();
    std::memcpy(out.data() + 8, &version, 4);
    std::memcpy(out.data() + 12, &hl, 8);
    std::memcpy(out.data() + 20, &hcrc, 4);
    std::memcpy(out.data() + kPreamble, h.out.data(), h.out.size());
    return out;
}

std::unique_ptr<IndexIVFDPQ> deserialize_ivf(const uint8_t* data, size_t size, std::string* quantizer_bytes) {
    Parsed p = parse(data, size, quantizer_bytes);
    auto ram = std::make_unique<RamLists>(p.entries.size(), p.format);
    for (size_t l = 0; l < p.entries.size(); l++) {
        const ListEntry& e = p.entries[l];
        require(crc32(data + e.offset, p.format.bytes(size_t(e.n))) == e.crc,
                "list " + std::to_string(l) + " checksum mismatch");
        ram->append(l, p.format.at(data + e.offset, size_t(e.n)));
    }
    p.index->set_lists(std::move(ram));
    return std::move(p.index);
}

std::unique_ptr<IndexIVFDPQ> map_ivf(const std::string& path, std::string* quantizer_bytes) {
    auto map = std::make_shared<const Mapping>(path);
    Parsed p = parse(map->data(), map->size(), quantizer_bytes);
    p.index->set_lists(std::make_unique<MappedLists>(map, std::move(p.entries), p.format));
    return std::move(p.index);
}

}  // namespace dpq::ivf
