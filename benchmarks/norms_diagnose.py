"""Why DPQ loses to IndexPQ at equal bytes on a data set: the codes or the norm bytes.

Trains one DPQ model of --levels levels of --nbits bits on the data of
benchmarks/norms.py, encodes the base with beam --beam and prints, against
IndexPQ with as many code bytes:

* reconstruction error (mean ||x - r||^2) and the median 10-NN distance;
* recall 10@10 of the same codes with the prefix norm kept exactly
  (float32: the codes' own ceiling), as an 8-bit or (4-bit levels) 4-bit
  code (fewer levels: equal total bytes) and not at all, shortlist --shortlist;
  these rows are IndexDPQ searches;
* how far the norm's cross terms ||r||^2 - sum_l ||c_l||^2 spread, the mean
  error of their 16- and 256-value codes beside the 10-NN distance, and the
  same once the first level's cross terms 2 <c_1, c_l> are taken out;
* --level1-exact: recall of a norm code that leaves the first level's cross
  terms exact and codes only the rest (8-bit, equal total bytes), beside
  today's 8-bit code of all of them; a numpy simulation of the ranking
  (scan by the coded norm, the best --shortlist re-scored exactly), not an
  index: it measures what such a norm would be worth.

    python benchmarks/norms_diagnose.py --data patches --levels 16 --beam 1
    python benchmarks/norms_diagnose.py --data patches --levels 16 --nbits 8 --beam 5 --level1-exact
"""

from __future__ import annotations

import argparse

import faiss
import numpy as np

from norms import image_patches, minilm_unit, recall10, split
from pyfaiss_dpq import IndexDPQ, SearchParametersDPQ


def code_values(v: np.ndarray, K: int) -> np.ndarray:
    """v replaced by the nearest of K values of a 1-D k-means (what a norm code stores)."""
    km = faiss.Kmeans(1, K, niter=25, seed=1)
    v32 = np.ascontiguousarray(v, dtype=np.float32)[:, None]
    km.train(v32)
    _, a = km.index.search(v32, 1)
    return km.centroids[a[:, 0], 0].astype(np.float64)


def simulated_recall(xq: np.ndarray, r: np.ndarray, norm: np.ndarray, gt: np.ndarray, shortlist: int) -> float:
    """Rank r by -2<q, r> + norm, re-score the best `shortlist` exactly, recall 10@10."""
    ip = xq.astype(np.float64) @ r.T
    cand = np.argpartition(norm[None] - 2 * ip, shortlist, axis=1)[:, :shortlist]
    exact = np.take_along_axis((r ** 2).sum(1)[None] - 2 * ip, cand, 1)
    return recall10(np.take_along_axis(cand, np.argsort(exact, 1)[:, :10], 1), gt)


def level1_exact(src: IndexDPQ, codes: np.ndarray, xb: np.ndarray, xq: np.ndarray, gt: np.ndarray,
                 m: int, shortlist: int) -> None:
    C = [c.astype(np.float64) for c in src.codebooks[:m]]
    r = np.zeros(xb.shape)
    own = np.zeros(len(xb))
    for l in range(m):
        c = C[l][codes[:, l]]
        r += c
        own += (c ** 2).sum(1)
    cross = (r ** 2).sum(1) - own
    c1 = C[0][codes[:, 0]]
    first = 2 * ((r - c1) * c1).sum(1)  # sum_{l>1} 2 <c_1, c_l>
    for name, norm in (("8-bit code of the cross terms (IndexDPQ's)", own + code_values(cross, 256)),
                       ("level 1's cross terms exact + 8-bit code of the rest", own + first + code_values(cross - first, 256))):
        print(f"  simulated, {m} levels + {name}: recall 10@10 {simulated_recall(xq, r, norm, gt, shortlist):.3f} "
              f"(shortlist {shortlist})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="patches", choices=["patches", "minilm"])
    p.add_argument("--levels", type=int, default=16)
    p.add_argument("--nbits", type=int, default=4, choices=[4, 8])
    p.add_argument("--beam", type=int, default=1)
    p.add_argument("--shortlist", type=int, default=100)
    p.add_argument("--nq", type=int, default=500)
    p.add_argument("--ntrain", type=int, default=10_000)
    p.add_argument("--level1-exact", action="store_true", help="also simulate a norm code with level 1's cross terms exact")
    args = p.parse_args()
    faiss.omp_set_num_threads(1)
    x = image_patches() if args.data == "patches" else minilm_unit()
    xt, xb, xq = split(x, args.nq, args.ntrain, 0)
    d, L, nbits = xb.shape[1], args.levels, args.nbits
    code_bytes = L * nbits // 8
    flat = faiss.IndexFlatL2(d)
    flat.add(xb)
    D, gt = flat.search(xq, 10)
    src = IndexDPQ(d, L, nbits, faiss.METRIC_L2, norms="none")
    src.beam_size = args.beam
    src.train(xt)
    src.add(xb)
    codes = src.get_codes().astype(np.int64)
    sample = np.arange(0, len(xb), max(1, len(xb) // 20_000))
    recons = src.sa_decode(src.sa_encode(xb[sample]))
    pq = faiss.IndexPQ(d, code_bytes, 8)
    pq.train(xt)
    pq.add(xb)
    _, Ipq = pq.search(xq, 10)
    pq_err = ((pq.reconstruct_n(0, pq.ntotal)[sample] - xb[sample]) ** 2).sum(1).mean()
    print(f"{args.data}: median 10-NN distance {np.median(D[:, 9]):.4g}; median ||x||^2 "
          f"{np.median((xb ** 2).sum(1)):.4g}")
    print(f"DPQ {L} x {nbits} bits (beam {args.beam}): mean ||x - r||^2 {((recons - xb[sample]) ** 2).sum(1).mean():.4g}; "
          f"IndexPQ {code_bytes} x 8 bits: {pq_err:.4g}, recall 10@10 {recall10(Ipq, gt):.3f}")
    configs = [("float32", L), ("8bit", L - 8 // nbits), ("none", L)]
    if nbits == 4:
        configs.insert(2, ("4bit", L - 1))
    for norms, m in configs:
        index = IndexDPQ(d, m, nbits, faiss.METRIC_L2, norms=norms, norm_prefixes=None if norms == "none" else [m])
        index.codebooks = src.codebooks[:m]
        index.add_codes(np.ascontiguousarray(codes[:, :m].astype(np.uint8)))
        _, I = index.search(xq, 10, params=SearchParametersDPQ(shortlist=args.shortlist))
        print(f"  {m} levels, norm {norms} ({index.bytes_per_vector} B): recall 10@10 {recall10(I, gt):.3f} "
              f"(shortlist {args.shortlist})")
    m = L - 8 // nbits
    r = np.zeros((len(sample), d))
    own = np.zeros(len(sample))
    for l in range(m):
        c = src.codebooks[l][codes[sample, l]].astype(np.float64)
        r += c
        own += (c ** 2).sum(1)
    cross = (r ** 2).sum(1) - own
    c1 = src.codebooks[0][codes[sample, 0]].astype(np.float64)
    rest = cross - 2 * ((r - c1) * c1).sum(1)
    for name, v in (("cross terms", cross), ("without level 1's", rest)):
        errors = ", ".join(f"{K} values: {np.abs(v - code_values(v, K)).mean():.4g}" for K in (16, 256))
        print(f"  {name} of prefix {m}: std {v.std():.4g}; mean code error, {errors}")
    if args.level1_exact:
        level1_exact(src, codes, xb, xq, gt, m, args.shortlist)


if __name__ == "__main__":
    main()
