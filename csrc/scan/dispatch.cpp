#include "dispatch.h"

#include <atomic>
#include <stdexcept>

namespace dpq::scan {

namespace {

bool has_avx2() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
bool has_avx512() { return has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"); }

const KernelSet* supported(const std::string& name) {
    if (name == kScalar.name) return &kScalar;
    if (name == kAvx2.name) return has_avx2() ? &kAvx2 : nullptr;
    if (name == kAvx512.name) return has_avx512() ? &kAvx512 : nullptr;
    return nullptr;
}

const KernelSet* best() {
    static const KernelSet* const pick = has_avx512() ? &kAvx512 : has_avx2() ? &kAvx2 : &kScalar;
    return pick;
}

std::atomic<const KernelSet*> forced{nullptr};  // null: auto

}  // namespace

std::vector<std::string> supported_kernels() {
    std::vector<std::string> names;
    for (const KernelSet* k : {&kScalar, &kAvx2, &kAvx512})
        if (supported(k->name)) names.emplace_back(k->name);
    return names;
}

const KernelSet& kernels_named(const std::string& name) {
    if (const KernelSet* k = supported(name)) return *k;
    throw std::invalid_argument("scan kernel '" + name + "' is unknown or not supported by this CPU (supported: " +
                                [] {
                                    std::string s;
                                    for (const auto& n : supported_kernels()) s += (s.empty() ? "" : ", ") + n;
                                    return s;
                                }() +
                                ")");
}

std::string forced_kernel() {
    const KernelSet* k = forced.load();
    return k ? k->name : "auto";
}

std::string force_kernel(const std::string& name) {
    const KernelSet* k = name == "auto" ? nullptr : &kernels_named(name);
    const KernelSet* old = forced.exchange(k);
    return old ? old->name : "auto";
}

const KernelSet& fastest_kernels() { return *best(); }

const KernelSet& active_kernels() {
    const KernelSet* k = forced.load();
    return k ? *k : *best();
}

}  // namespace dpq::scan
