#include "swig_bridge.h"

// Generated at build time by `swig -python -external-runtime`.
#include "swigpyrun.h"

namespace dpq::swig {

namespace {

swig_type_info* type_of(const char* name) {
    swig_type_info* t = SWIG_TypeQuery(name);
    if (!t) PyErr_Format(PyExc_ImportError, "faiss SWIG type '%s' not found: import faiss first", name);
    return t;
}

void* unwrap(PyObject* obj, const char* type_name, const char* what) {
    swig_type_info* t = type_of(type_name);
    if (!t) return nullptr;
    void* ptr = nullptr;
    if (!SWIG_IsOK(SWIG_ConvertPtr(obj, &ptr, t, 0)) || !ptr) {
        PyErr_Format(PyExc_TypeError, "expected a %s, got %s", what, Py_TYPE(obj)->tp_name);
        return nullptr;
    }
    return ptr;
}

PyObject* wrap(void* ptr, const char* type_name, bool own) {
    swig_type_info* t = type_of(type_name);
    if (!t) return nullptr;
    return SWIG_NewPointerObj(ptr, t, SWIG_POINTER_NOSHADOW | (own ? SWIG_POINTER_OWN : 0));
}

}  // namespace

PyObject* wrap_index(faiss::Index* index, bool own) { return wrap(index, "faiss::Index *", own); }

PyObject* wrap_search_parameters(faiss::SearchParameters* params, bool own) {
    return wrap(params, "faiss::SearchParameters *", own);
}

PyObject* wrap_search_parameters_ivf(faiss::SearchParametersIVF* params, bool own) {
    return wrap(params, "faiss::SearchParametersIVF *", own);
}

faiss::Index* unwrap_index(PyObject* obj) {
    return static_cast<faiss::Index*>(unwrap(obj, "faiss::Index *", "faiss.Index"));
}

faiss::SearchParameters* unwrap_search_parameters(PyObject* obj) {
    return static_cast<faiss::SearchParameters*>(
            unwrap(obj, "faiss::SearchParameters *", "faiss.SearchParameters"));
}

faiss::IDSelector* unwrap_id_selector(PyObject* obj) {
    return static_cast<faiss::IDSelector*>(unwrap(obj, "faiss::IDSelector *", "faiss.IDSelector"));
}

bool runtime_available() {
    return SWIG_TypeQuery("faiss::Index *") && SWIG_TypeQuery("faiss::SearchParameters *") &&
           SWIG_TypeQuery("faiss::IDSelector *");
}

}  // namespace dpq::swig
