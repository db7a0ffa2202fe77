// Hands C++ objects to Python as genuine faiss SWIG proxies and takes them
// back, through SWIG's external runtime (the type table faiss registered).
#pragma once

#include <Python.h>

#include "faiss_abi.h"

namespace dpq::swig {

// Raw SWIG pointer objects ("this" of a proxy). With own=true the SWIG object
// deletes the C++ object (through its virtual destructor) when collected.
PyObject* wrap_index(faiss::Index* index, bool own);
PyObject* wrap_search_parameters(faiss::SearchParameters* params, bool own);
PyObject* wrap_search_parameters_ivf(faiss::SearchParametersIVF* params, bool own);

// The C++ pointer behind a faiss proxy (or raw SWIG object); null with a
// Python TypeError set when obj is not of that type.
faiss::Index* unwrap_index(PyObject* obj);
faiss::SearchParameters* unwrap_search_parameters(PyObject* obj);
faiss::IDSelector* unwrap_id_selector(PyObject* obj);

// True when faiss's SWIG type table is reachable and holds our types.
bool runtime_available();

}  // namespace dpq::swig
