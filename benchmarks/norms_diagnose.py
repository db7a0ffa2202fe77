"""Why DPQ loses to IndexPQ at equal bytes on a data set: the codes or the norm bytes.

Trains one DPQ model of --levels 4-bit levels (--levels / 2 code bytes) on
the data of benchmarks/norms.py, encodes the base with beam --beam and
prints, against IndexPQ with as many code bytes:

* reconstruction error (mean ||x - r||^2) and the median 10-NN distance;
* recall 10@10 of the same codes with the prefix norm kept exactly
  (float32: the codes' own ceiling), as an 8-bit or 4-bit code (two or one
  fewer levels: equal total bytes) and not at all, shortlist --shortlist;
* how far the norm's cross terms ||r||^2 - sum_l ||c_l||^2 spread and the
  mean error of their 16- and 256-value codes, beside the 10-NN distance.

    python benchmarks/norms_diagnose.py --data patches --levels 16 --beam 1
"""

from __future__ import annotations

import argparse

import faiss
import numpy as np

from norms import image_patches, minilm_unit, recall10, split
from pyfaiss_dpq import IndexDPQ, SearchParametersDPQ


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="patches", choices=["patches", "minilm"])
    p.add_argument("--levels", type=int, default=16)
    p.add_argument("--beam", type=int, default=1)
    p.add_argument("--shortlist", type=int, default=100)
    p.add_argument("--nq", type=int, default=500)
    p.add_argument("--ntrain", type=int, default=10_000)
    args = p.parse_args()
    faiss.omp_set_num_threads(1)
    x = image_patches() if args.data == "patches" else minilm_unit()
    xt, xb, xq = split(x, args.nq, args.ntrain, 0)
    d, L = xb.shape[1], args.levels
    flat = faiss.IndexFlatL2(d)
    flat.add(xb)
    D, gt = flat.search(xq, 10)
    src = IndexDPQ(d, L, 4, faiss.METRIC_L2, norms="none")
    src.beam_size = args.beam
    src.train(xt)
    src.add(xb)
    codes = src.get_codes()
    sample = np.arange(0, len(xb), max(1, len(xb) // 20_000))
    recons = src.sa_decode(src.sa_encode(xb[sample]))
    pq = faiss.IndexPQ(d, L // 2, 8)
    pq.train(xt)
    pq.add(xb)
    _, Ipq = pq.search(xq, 10)
    pq_err = ((pq.reconstruct_n(0, pq.ntotal)[sample] - xb[sample]) ** 2).sum(1).mean()
    print(f"{args.data}: median 10-NN distance {np.median(D[:, 9]):.4g}; median ||x||^2 "
          f"{np.median((xb ** 2).sum(1)):.4g}")
    print(f"DPQ {L} x 4 bits (beam {args.beam}): mean ||x - r||^2 {((recons - xb[sample]) ** 2).sum(1).mean():.4g}; "
          f"IndexPQ {L // 2} x 8 bits: {pq_err:.4g}, recall 10@10 {recall10(Ipq, gt):.3f}")
    for norms, m in (("float32", L), ("8bit", L - 2), ("4bit", L - 1), ("none", L)):
        index = IndexDPQ(d, m, 4, faiss.METRIC_L2, norms=norms, norm_prefixes=None if norms == "none" else [m])
        index.codebooks = src.codebooks[:m]
        index.add_codes(np.ascontiguousarray(codes[:, :m]))
        _, I = index.search(xq, 10, params=SearchParametersDPQ(shortlist=args.shortlist))
        print(f"  {m} levels, norm {norms} ({index.bytes_per_vector} B): recall 10@10 {recall10(I, gt):.3f} "
              f"(shortlist {args.shortlist})")
    m = L - 1
    r = np.stack([src.reconstruct_prefix(int(i), m) for i in sample]).astype(np.float64)
    own = sum((src.codebooks[l][codes[sample, l]].astype(np.float64) ** 2).sum(1) for l in range(m))
    cross = (r ** 2).sum(1) - own
    errors = []
    for K in (16, 256):
        km = faiss.Kmeans(1, K, niter=25, seed=1)
        km.train(cross.astype(np.float32)[:, None])
        errors.append(f"{K} values: {np.abs(cross[:, None] - km.centroids[:, 0][None]).min(1).mean():.4g}")
    print(f"  cross terms of prefix {m}: std {cross.std():.4g}; mean code error, " + ", ".join(errors))


if __name__ == "__main__":
    main()
