#include "serialize.h"

#include <cstring>
#include <stdexcept>

#include "byte_io.h"

namespace dpq {

namespace {

constexpr const char* kKind = "IndexDPQ";

void require(bool ok, const std::string& what) { require_consistent(ok, kKind, what); }

}  // namespace

std::vector<uint8_t> serialize(const IndexDPQ& index) {
    ByteWriter w;
    w.put<uint32_t>(kFormatVersion);
    w.put<int32_t>(index.d);
    w.put<int32_t>(int32_t(index.metric_type));
    w.put<int32_t>(index.levels());
    w.put<int32_t>(index.nbits());
    w.put<uint8_t>(index.is_trained);
    w.put<int32_t>(index.search_levels);
    w.put<int32_t>(index.beam_size);
    const std::vector<float> C = index.get_codebooks();
    if (index.is_trained) w.bytes(C.data(), C.size() * sizeof(float));
    const NormSpec& ns = index.norm_spec();
    w.put<int32_t>(int32_t(ns.kind));
    w.put<int32_t>(int32_t(ns.prefixes.size()));
    for (int p : ns.prefixes) w.put<int32_t>(p);
    const std::vector<float>& nc = index.norm_quantizer().centroids();
    w.put<uint8_t>(!nc.empty());
    w.bytes(nc.data(), nc.size() * sizeof(float));
    w.put<uint8_t>(index.cosine());
    // Codes are stored in the packed standalone format so that the file does
    // not depend on the in-memory block layout.
    std::vector<uint8_t> codes(size_t(index.ntotal) * index.levels());
    index.get_codes(0, index.ntotal, codes.data());
    std::vector<uint8_t> packed(size_t(index.ntotal) * index.codec().packed_size());
    index.codec().pack(size_t(index.ntotal), codes.data(), packed.data());
    w.put<int64_t>(index.ntotal);
    w.bytes(packed.data(), packed.size());
    return std::move(w.out);
}

std::unique_ptr<IndexDPQ> deserialize(const uint8_t* data, size_t size) {
    ByteReader r(kKind, data, size);
    const auto version = r.get<uint32_t>("version");
    if (version < kOldestFormatVersion || version > kFormatVersion)
        throw std::invalid_argument("IndexDPQ format version " + std::to_string(version) +
                                    " is not supported (this build reads versions " +
                                    std::to_string(kOldestFormatVersion) + " to " + std::to_string(kFormatVersion) +
                                    ")");
    const auto d = r.get<int32_t>("d");
    const auto metric = r.get<int32_t>("metric");
    const auto levels = r.get<int32_t>("levels");
    const auto nbits = r.get<int32_t>("nbits");
    const auto trained = r.get<uint8_t>("is_trained");
    const auto search_levels = r.get<int32_t>("search_levels");
    const auto beam_size = r.get<int32_t>("beam_size");
    require(d > 0 && d <= (1 << 20), "d = " + std::to_string(d));
    require(metric == faiss::METRIC_L2 || metric == faiss::METRIC_INNER_PRODUCT, "metric");
    require(levels >= 1 && levels <= 255, "levels = " + std::to_string(levels));
    require(nbits == 4 || nbits == 8, "nbits = " + std::to_string(nbits));
    require(trained <= 1, "is_trained flag");
    require(search_levels >= 1 && search_levels <= levels, "search_levels");
    require(beam_size >= 1 && beam_size <= IndexDPQ::kMaxBeamSize, "beam_size");
    // Check sizes against what is left before allocating anything.
    const size_t cb_bytes = size_t(levels) * (size_t(1) << nbits) * size_t(d) * sizeof(float);
    require(!trained || cb_bytes <= r.left(), "codebooks larger than the file");

    std::vector<float> C;
    if (trained) {
        C.resize(cb_bytes / sizeof(float));
        r.bytes(C.data(), cb_bytes, "codebooks");
    }
    // Version 1 kept float32 norms of every prefix for L2, none for inner product.
    NormSpec ns = NormSpec::all(metric == faiss::METRIC_L2 ? NormKind::kFloat32 : NormKind::kNone, levels);
    std::vector<float> centroids;
    if (version >= 2) {
        ns.kind = NormKind(r.get<int32_t>("norm kind"));
        const auto np = r.get<int32_t>("norm prefix count");
        require(np >= 0 && np <= levels, "norm prefix count = " + std::to_string(np));
        ns.prefixes.resize(size_t(np));
        for (auto& p : ns.prefixes) p = r.get<int32_t>("norm prefix");
        try {
            ns.check(levels);
        } catch (const std::invalid_argument& e) {
            require(false, e.what());
        }
        const auto has_centroids = r.get<uint8_t>("norm centroid flag");
        require(has_centroids <= 1 && (!has_centroids || ns.quantized()), "norm centroid flag");
        if (has_centroids) {
            const size_t bytes = ns.prefixes.size() * size_t(ns.K()) * sizeof(float);
            require(bytes <= r.left(), "norm centroids larger than the file");
            centroids.resize(bytes / sizeof(float));
            r.bytes(centroids.data(), bytes, "norm centroids");
        }
    }
    // Before version 3 no index was cosine.
    const auto cosine = version >= 3 ? r.get<uint8_t>("cosine flag") : uint8_t(0);
    require(cosine <= 1, "cosine flag");
    std::unique_ptr<IndexDPQ> index;
    try {
        index = std::make_unique<IndexDPQ>(d, levels, nbits, faiss::MetricType(metric), ns, cosine);
        if (trained) index->set_codebooks(C.data());
        if (!centroids.empty()) index->set_norm_centroids(centroids);
    } catch (const std::invalid_argument& e) {
        require(false, e.what());
    }
    index->search_levels = search_levels;
    index->beam_size = beam_size;
    const auto ntotal = r.get<int64_t>("ntotal");
    const size_t cs = index->codec().packed_size();
    require(ntotal >= 0 && size_t(ntotal) <= r.left() / cs, "ntotal = " + std::to_string(ntotal));
    require(trained || ntotal == 0, "codes stored without codebooks");
    require(ntotal == 0 || index->norm_quantizer().trained(), "codes stored without norm centroids");
    require(r.left() == size_t(ntotal) * cs, "trailing bytes after the codes");
    if (ntotal > 0) {
        std::vector<uint8_t> packed(size_t(ntotal) * cs);
        r.bytes(packed.data(), packed.size(), "codes");
        index->add_sa_codes(ntotal, packed.data(), nullptr);
    }
    return index;
}

}  // namespace dpq
