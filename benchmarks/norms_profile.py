"""A search to profile: one configuration of benchmarks/norms.py, searched --repeat times.

Trains a DPQ model (--model-levels levels of --nbits bits, greedy codes, no
norms) or reads it from --cache (written there on the first run, so that a
profiled second run does not train), makes the --levels-level configuration with --norms kept for that
prefix, and searches the --nq queries --repeat times on one thread, so that
a sampling profiler sees mostly the search. The README's profile:

    python benchmarks/norms_profile.py --data minilm --cache minilm_4x64.dpq --repeat 1
    perf record -o perf.data python benchmarks/norms_profile.py --data minilm --cache minilm_4x64.dpq \\
        --nbits 4 --model-levels 64 --levels 16 --norms none --shortlist 100 --repeat 30
    perf report -i perf.data --no-children --stdio

(with the extension built with symbols: cmake -DCMAKE_BUILD_TYPE=RelWithDebInfo).
"""

from __future__ import annotations

import argparse
import os
import time

import faiss

from norms import image_patches, minilm_unit, recall10, split, with_norms
from pyfaiss_dpq import IndexDPQ, SearchParametersDPQ, read_index, write_index


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="minilm", choices=["patches", "minilm"])
    p.add_argument("--nbits", type=int, default=4)
    p.add_argument("--model-levels", type=int, default=64)
    p.add_argument("--levels", type=int, default=16)
    p.add_argument("--norms", default="none", choices=["none", "4bit", "8bit"])
    p.add_argument("--shortlist", type=int, default=100)
    p.add_argument("--repeat", type=int, default=30)
    p.add_argument("--nq", type=int, default=500)
    p.add_argument("--ntrain", type=int, default=10_000)
    p.add_argument("--cache", help="the trained model's file: read if it exists, else written")
    args = p.parse_args()
    faiss.omp_set_num_threads(1)
    x = image_patches() if args.data == "patches" else minilm_unit()
    xt, xb, xq = split(x, args.nq, args.ntrain, 0)
    flat = faiss.IndexFlatL2(xb.shape[1])
    flat.add(xb)
    _, gt = flat.search(xq, 10)
    if args.cache and os.path.exists(args.cache):
        src = read_index(args.cache)
    else:
        src = IndexDPQ(xb.shape[1], args.model_levels, args.nbits, faiss.METRIC_L2, norms="none")
        src.train(xt)
        src.add(xb)
        if args.cache:
            write_index(src, args.cache)
    index = with_norms(src, args.levels, args.norms)
    params = SearchParametersDPQ(shortlist=args.shortlist)
    _, I = index.search(xq, 10, params=params)
    t0 = time.perf_counter()
    for _ in range(args.repeat):
        index.search(xq, 10, params=params)
    qps = args.repeat * len(xq) / (time.perf_counter() - t0)
    print(f"{args.levels} levels x {args.nbits} bits, norm {args.norms}, shortlist {args.shortlist}: "
          f"recall 10@10 {recall10(I, gt):.3f}, {qps:.0f} QPS")


if __name__ == "__main__":
    main()
