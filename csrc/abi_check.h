// Verifies at import time that faiss_abi.h matches the loaded libfaiss.so.
#pragma once

#include <string>

#include "faiss_abi.h"

namespace dpq::abi {

struct Expected {
    int d;
    faiss::idx_t ntotal;
    bool verbose;
    bool is_trained;
    int metric_type;
    float metric_arg;
};

// Compares faiss::Index's vtable in libfaiss.so slot by slot with our
// declaration (addresses only: nothing is called), then reads the data
// members of `live`, a faiss.IndexFlat made by Python with the values in
// `expected`. Returns "" when everything matches, else what differs.
std::string check(const faiss::Index* live, const Expected& expected);

// Reads nprobe and max_codes of `live`, a faiss.SearchParametersIVF made by
// Python with the given values, through our declaration (faiss_abi.h).
// Returns "" when they match, else what differs.
std::string check_search_parameters_ivf(const faiss::SearchParameters* live, size_t nprobe, size_t max_codes);

}  // namespace dpq::abi
