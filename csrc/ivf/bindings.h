// Registers IndexIVFDPQ's entry points on the `_core` module.
#pragma once

#include <pybind11/pybind11.h>

namespace dpq::ivf {

void register_bindings(pybind11::module_& m);

}  // namespace dpq::ivf
