// The one place that picks a scan kernel: by CPU features at run time, or
// as forced (for tests and benchmarks) with force_kernel.
#pragma once

#include <string>
#include <vector>

#include "kernels.h"

namespace dpq::scan {

// Kernels this CPU can run, slowest first: "scalar", then "avx2", "avx512".
std::vector<std::string> supported_kernels();
// "auto" (the default: the fastest supported) or a supported kernel's name;
// throws std::invalid_argument otherwise. Returns the previous setting.
std::string force_kernel(const std::string& name);
// The current setting: "auto" or a forced name.
std::string forced_kernel();
// The kernels searches use now.
const KernelSet& active_kernels();
// The fastest kernels this CPU supports, whatever is forced: the float
// lookup tables come from these, so that every scan kernel sees the same.
const KernelSet& fastest_kernels();
// A supported kernel by name; throws std::invalid_argument otherwise.
const KernelSet& kernels_named(const std::string& name);

}  // namespace dpq::scan
