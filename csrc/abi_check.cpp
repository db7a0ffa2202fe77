#include "abi_check.h"

#include <dlfcn.h>

#include <cstring>
#include <sstream>
#include <typeinfo>

namespace dpq::abi {

// offsetof on a polymorphic type is what an ABI check is about.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winvalid-offsetof"
static_assert(sizeof(faiss::Index) == kIndexSize, "faiss::Index layout differs from faiss_abi.h's releases");
static_assert(offsetof(faiss::Index, d) == 8 && offsetof(faiss::Index, ntotal) == 16 &&
                      offsetof(faiss::Index, verbose) == 24 && offsetof(faiss::Index, is_trained) == 25 &&
                      offsetof(faiss::Index, metric_type) == 28 && offsetof(faiss::Index, metric_arg) == 32,
              "faiss::Index member offsets differ from faiss_abi.h's releases");
#pragma GCC diagnostic pop

namespace {

// Itanium C++ ABI: a pointer to a virtual member function stores
// 1 + (byte offset of its vtable slot).
template <class PMF>
int slot_of(PMF pmf) {
    struct {
        uintptr_t ptr;
        ptrdiff_t adj;
    } raw;
    static_assert(sizeof(pmf) == sizeof(raw));
    std::memcpy(&raw, &pmf, sizeof raw);
    return (raw.ptr & 1) ? int((raw.ptr - 1) / sizeof(void*)) : -1;
}

struct Slot {
    const char* name;
    int slot;
    const char* symbol;  // null: inline in Faiss's header, not exported
};

}  // namespace

std::string check(const faiss::Index* live, const Expected& e) {
    using I = faiss::Index;
    const Slot slots[] = {
            {"~Index (complete)", 0, "_ZN5faiss5IndexD1Ev"},
            {"~Index (deleting)", 1, "_ZN5faiss5IndexD0Ev"},
            {"train", slot_of(&I::train), "_ZN5faiss5Index5trainElPKf"},
            {"train_with_queries", slot_of(&I::train_with_queries), "_ZN5faiss5Index18train_with_queriesElPKflS2_"},
            {"train_ex", slot_of(&I::train_ex), nullptr},
            {"add", slot_of(&I::add), "__cxa_pure_virtual"},
            {"add_ex", slot_of(&I::add_ex), nullptr},
            {"add_with_ids", slot_of(&I::add_with_ids), "_ZN5faiss5Index12add_with_idsElPKfPKl"},
            {"add_with_ids_ex", slot_of(&I::add_with_ids_ex), nullptr},
            {"search", slot_of(&I::search), "__cxa_pure_virtual"},
            {"search_ex", slot_of(&I::search_ex), nullptr},
            {"search1", slot_of(&I::search1),
             "_ZNK5faiss5Index7search1EPKfRNS_22ResultHandlerUnorderedIflEEPNS_16SearchParametersE"},
            {"range_search", slot_of(&I::range_search),
             "_ZNK5faiss5Index12range_searchElPKffPNS_17RangeSearchResultEPKNS_16SearchParametersE"},
            {"assign", slot_of(&I::assign), "_ZNK5faiss5Index6assignElPKfPll"},
            {"reset", slot_of(&I::reset), "__cxa_pure_virtual"},
            {"remove_ids", slot_of(&I::remove_ids), "_ZN5faiss5Index10remove_idsERKNS_10IDSelectorE"},
            {"reconstruct", slot_of(&I::reconstruct), "_ZNK5faiss5Index11reconstructElPf"},
            {"reconstruct_batch", slot_of(&I::reconstruct_batch), "_ZNK5faiss5Index17reconstruct_batchElPKlPf"},
            {"reconstruct_n", slot_of(&I::reconstruct_n), "_ZNK5faiss5Index13reconstruct_nEllPf"},
            {"search_and_reconstruct", slot_of(&I::search_and_reconstruct),
             "_ZNK5faiss5Index22search_and_reconstructElPKflPfPlS3_PKNS_16SearchParametersE"},
            {"search_subset", slot_of(&I::search_subset), "_ZNK5faiss5Index13search_subsetElPKflPKllPfPl"},
            {"compute_residual", slot_of(&I::compute_residual), "_ZNK5faiss5Index16compute_residualEPKfPfl"},
            {"compute_residual_n", slot_of(&I::compute_residual_n), "_ZNK5faiss5Index18compute_residual_nElPKfPfPKl"},
            {"get_distance_computer", slot_of(&I::get_distance_computer), "_ZNK5faiss5Index21get_distance_computerEv"},
            {"sa_code_size", slot_of(&I::sa_code_size), "_ZNK5faiss5Index12sa_code_sizeEv"},
            {"sa_encode", slot_of(&I::sa_encode), "_ZNK5faiss5Index9sa_encodeElPKfPh"},
            {"sa_decode", slot_of(&I::sa_decode), "_ZNK5faiss5Index9sa_decodeElPKhPf"},
            {"merge_from", slot_of(&I::merge_from), "_ZN5faiss5Index10merge_fromERS0_l"},
            {"check_compatible_for_merge", slot_of(&I::check_compatible_for_merge),
             "_ZNK5faiss5Index26check_compatible_for_mergeERKS0_"},
            {"add_sa_codes", slot_of(&I::add_sa_codes), "_ZN5faiss5Index12add_sa_codesElPKhPKl"},
    };
    static_assert(sizeof(slots) / sizeof(slots[0]) == kIndexVirtualSlots);
    std::ostringstream err;

    void* lib = dlopen("libfaiss.so", RTLD_NOW | RTLD_NOLOAD);
    if (!lib) return "libfaiss.so is not loaded (import faiss first)";
    auto* vtable = static_cast<void* const*>(dlsym(lib, "_ZTVN5faiss5IndexE"));
    const void* typeinfo = dlsym(lib, "_ZTIN5faiss5IndexE");
    Dl_info lib_info{};
    if (!vtable || !typeinfo || !dladdr(vtable, &lib_info)) {
        dlclose(lib);
        return "libfaiss.so does not export faiss::Index's vtable and typeinfo";
    }
    // Itanium layout: [offset-to-top][typeinfo][slot 0][slot 1]...
    if (vtable[1] != typeinfo) err << "vtable typeinfo mismatch; ";
    void* const* fn = vtable + 2;
    for (int i = 0; i < kIndexVirtualSlots; i++) {
        const Slot& s = slots[i];
        if (s.slot != i) {
            err << s.name << " declared at slot " << s.slot << ", expected " << i << "; ";
            continue;
        }
        if (i < 2 && fn[i] == nullptr) {
            // GCC leaves the destructor slots of an abstract class's own
            // vtable empty: such an object is never the most derived one.
            continue;
        }
        if (s.symbol) {
            void* want = std::strcmp(s.symbol, "__cxa_pure_virtual") == 0 ? dlsym(RTLD_DEFAULT, s.symbol)
                                                                           : dlsym(lib, s.symbol);
            if (!want || fn[i] != want) err << s.name << " is not at slot " << i << "; ";
        } else {
            Dl_info info{};
            if (!dladdr(fn[i], &info) || info.dli_fbase != lib_info.dli_fbase)
                err << s.name << " (slot " << i << ") does not point into libfaiss.so; ";
        }
    }
    dlclose(lib);

    // Only read the live object once its vtable layout is known to agree.
    if (live && err.str().empty()) {
        auto* vptr = *reinterpret_cast<void* const* const*>(live);
        auto* ti = static_cast<const std::type_info*>(vptr[-1]);
        if (std::strcmp(ti->name(), "N5faiss9IndexFlatE") != 0)
            err << "live object's dynamic type reads as " << ti->name() << "; ";
        if (live->d != e.d) err << "d reads " << live->d << "; ";
        if (live->ntotal != e.ntotal) err << "ntotal reads " << live->ntotal << "; ";
        if (live->verbose != e.verbose) err << "verbose reads wrong; ";
        if (live->is_trained != e.is_trained) err << "is_trained reads wrong; ";
        if (int(live->metric_type) != e.metric_type) err << "metric_type reads " << live->metric_type << "; ";
        if (live->metric_arg != e.metric_arg) err << "metric_arg reads " << live->metric_arg << "; ";
    }
    return err.str();
}

std::string check_search_parameters_ivf(const faiss::SearchParameters* live, size_t nprobe, size_t max_codes) {
    std::ostringstream err;
    auto* vptr = *reinterpret_cast<void* const* const*>(live);
    auto* ti = static_cast<const std::type_info*>(vptr[-1]);
    if (std::strcmp(ti->name(), "N5faiss19SearchParametersIVFE") != 0) {
        err << "live SearchParametersIVF's dynamic type reads as " << ti->name() << "; ";
        return err.str();
    }
    auto* p = static_cast<const faiss::SearchParametersIVF*>(live);
    if (p->nprobe != nprobe) err << "SearchParametersIVF.nprobe reads " << p->nprobe << "; ";
    if (p->max_codes != max_codes) err << "SearchParametersIVF.max_codes reads " << p->max_codes << "; ";
    return err.str();
}

}  // namespace dpq::abi
