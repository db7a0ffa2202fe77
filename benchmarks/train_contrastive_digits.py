"""Where does contrastive (SPQ-style) DPQ lose on digits: the encoder or the quantizer?

sklearn digits, the demo's stratified split (1,617 database, 180 held-out
queries), label mAP over the whole database. Prints exact search on the pixels,
IndexPQ on the pixels at 1 and 4 bytes, exact search on the contrastive
encoder's features, and contrastive DPQ (4 levels x 8 bits, one model) at 1..4 bytes.

    python benchmarks/train_contrastive_digits.py                    # trainer defaults
    python benchmarks/train_contrastive_digits.py "{'epochs': 32}"   # any DPQTrainer parameters
"""

import ast
import sys
import time

import faiss
import torch

from pyfaiss_dpq import SearchParametersDPQ
from pyfaiss_dpq.demo import label_map, pq_index, split_digits
from pyfaiss_dpq.train import DPQTrainer


def main() -> int:
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    ib, iq, yb, yq = split_digits(0)
    n = len(ib)
    xb, xq = ib.reshape(n, -1), iq.reshape(len(iq), -1)
    flat = faiss.IndexFlatL2(xb.shape[1])
    flat.add(xb)
    print(f"exact search on pixels (L2): mAP {label_map(flat.search(xq, n)[1], yb, yq):.3f}")
    for m in (1, 4):
        pq, pad = pq_index(xb, m)
        pq.add(pad(xb))
        print(f"IndexPQ on pixels, {m} B: mAP {label_map(pq.search(pad(xq), n)[1], yb, yq):.3f}")
    extra = ast.literal_eval(sys.argv[1]) if len(sys.argv) > 1 else {}
    t0 = time.perf_counter()
    trainer = DPQTrainer(levels=4, nbits=8, mode="contrastive", verbose=False, **extra).fit(ib)
    print(f"DPQTrainer(mode='contrastive', levels=4, nbits=8, {extra}) trained in {time.perf_counter() - t0:.0f} s")
    fb, fq = trainer.encode(ib), trainer.encode_query(iq)
    flat = faiss.IndexFlatIP(fb.shape[1])
    flat.add(fb)
    print(f"exact search on the contrastive features: mAP {label_map(flat.search(fq, n)[1], yb, yq):.3f}")
    index = trainer.to_index()
    index.add(fb)
    maps = [label_map(index.search(fq, n, params=SearchParametersDPQ(levels=m))[1], yb, yq) for m in range(1, 5)]
    print("contrastive DPQ, one model, 1..4 B: mAP " + " / ".join(f"{v:.3f}" for v in maps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
