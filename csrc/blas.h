// The few BLAS / LAPACK routines we call, from the OpenBLAS that the faiss-cpu
// wheel bundles (faiss_cpu.libs/libopenblaso-*.so, linked in CMakeLists.txt).
// Fortran calling convention: column-major, every argument by pointer.
#pragma once

extern "C" {
void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
            const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
            const float* beta, float* c, const int* ldc);
void dposv_(const char* uplo, const int* n, const int* nrhs, double* a, const int* lda, double* b,
            const int* ldb, int* info);
}

namespace dpq::blas {

// Row-major out (n x K) = x (n x d) . c^T, c: K x d row-major; out row stride ldo.
inline void dots_rowmajor(int n, int K, int d, const float* x, const float* c, float* out, int ldo) {
    const float one = 1, zero = 0;
    sgemm_("T", "N", &K, &n, &d, &one, c, &d, x, &d, &zero, out, &ldo);
}

}  // namespace dpq::blas
