#include "lut.h"

namespace dpq {

float compute_lut(const Codec& codec, bool l2, const float* q, int levels, float* lut) {
    const int d = codec.d(), K = codec.K();
    const float scale = l2 ? -2.f : -1.f;
    for (int l = 0; l < levels; l++)
        for (int k = 0; k < K; k++) {
            const float* c = codec.codeword(l, k);
            float s = 0;
            for (int j = 0; j < d; j++) s += q[j] * c[j];
            lut[l * K + k] = scale * s;
        }
    if (!l2) return 0.f;
    float qn = 0;
    for (int j = 0; j < d; j++) qn += q[j] * q[j];
    return qn;
}

}  // namespace dpq
