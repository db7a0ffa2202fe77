"""Benchmark outputs: results.json (every number), results.md (tables) and PNG plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from .baselines import METHODS

METHOD_ORDER = ("DPQ", *METHODS, "Flat")


def training_totals(rows: list) -> list:
    """Per method: lengths built, training and encoding seconds summed over them (DPQ: once)."""
    totals = []
    for method in METHOD_ORDER:
        built = [r for r in rows if r["method"] == method and r["status"] == "ok"]
        if not built:
            continue
        once = method in ("DPQ", "Flat")
        totals.append({
            "method": method,
            "lengths": len(built),
            "models_trained": 1 if method == "DPQ" else (0 if method == "Flat" else len(built)),
            "train_s": built[0]["train_s"] if once else sum(r["train_s"] for r in built),
            "encode_s": built[0]["encode_s"] if once else sum(r["encode_s"] for r in built),
        })
    return totals


def write_all(results: dict, out: Path, plots: bool = True) -> None:
    """Write results.json, results.md and (unless plots=False) the PNG plots into `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results["plots"] = write_plots(results, out) if plots else []
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(markdown(results))


# ---------------------------------------------------------------- markdown
def _num(value: Optional[float], fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def _row_order(row: dict) -> tuple:
    length = row["length"] if row["length"] is not None else float("inf")
    return length, METHOD_ORDER.index(row["method"])


def markdown(results: dict) -> str:
    ds, cfg, machine, dpq = results["dataset"], results["config"], results["machine"], results["dpq"]
    lines = [
        f"# pyfaiss-dpq benchmark: {ds['name']}",
        "",
        f"- Data: {ds['n_base']} base vectors, {ds['n_queries']} queries, {ds['n_train']} training vectors, "
        f"d={ds['d']}, metric {ds['metric']}, class labels: {'yes' if ds['labels'] else 'no'}. "
        f"Ground truth: exact top-{ds['gt_k']} by Faiss brute force.",
        f"- DPQ ({cfg['trainer']} trainer): {dpq['description']}. Trained **once** in {dpq['train_s']:.2f} s and "
        f"searched at every prefix m = {', '.join(map(str, cfg['levels']))}.",
        f"- Machine: {machine['cpu']}, {machine['cpu_count']} cores, {machine['platform']}; "
        f"Python {machine['python']}, numpy {machine['numpy']}, faiss {machine['faiss']}, "
        f"torch {machine['torch'] or 'not installed'}, pyfaiss-dpq {machine['pyfaiss_dpq']}; {machine['date']}. "
        f"Load average at start / end: {machine['load_average_at_start'][0]:.1f} / "
        f"{machine['load_average_at_end'][0]:.1f} (above the benchmark's own threads, other processes shared the cores).",
        f"- Command: `{results['command']}`",
    ]
    if dpq["supervised"]:
        lines.append("- DPQ was trained **supervised** on the class labels: it ranks by learned class similarity, "
                     "not by distance in the input space, so its recall of the exact input-space neighbours is "
                     "expected to be low; mAP@100 (class retrieval) is the metric it optimizes.")
    lines += [
        "",
        "## Quality and speed at equal total bytes per vector",
        "",
        "Each group of rows stores the same **total** bytes per vector: DPQ's codes for the first m levels plus, "
        "for L2, its 4-byte prefix norm per level; every baseline is configured to exactly that budget "
        "(its codes plus any norm or scalar bytes). Search returns the top "
        f"{cfg['k']}. QPS: median of {cfg['qps_runs']} runs over all queries, 1 thread and "
        f"{machine['threads_all']} threads.",
        "",
        "| total B | method | m | code B | extra B | R 1@1 | R 10@10 | R 1@100 | mAP@100 | QPS 1 thr | "
        f"QPS {machine['threads_all']} thr | train s | encode s | build MB |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(results["rows"], key=_row_order):
        m = "—" if r["length"] is None else str(r["length"])
        if r["status"] != "ok":
            lines.append(f"| {r['total_bytes']} | {r['method']} | {m} | — | — | {r['status']}: {r['note']} "
                         "| | | | | | | | |")
            continue
        train = f"{r['train_s']:.2f}" + (" (once)" if r["method"] == "DPQ" else "")
        lines.append(
            f"| {r['total_bytes']} | {'**DPQ**' if r['method'] == 'DPQ' else r['method']} | {m} | "
            f"{r['code_bytes']} | {r['extra_bytes']} | {_num(r['recall_1_at_1'], '.3f')} | "
            f"{_num(r['recall_10_at_10'], '.3f')} | {_num(r['recall_1_at_100'], '.3f')} | "
            f"{_num(r['map_at_100'], '.3f')} | {r['qps_1_thread']:,.0f} | {r['qps_all_threads']:,.0f} | "
            f"{train} | {r['encode_s']:.2f} | {_num(r['build_peak_mb'], '.1f')} |")
    lines += [
        "",
        "## Training and encoding time over all lengths",
        "",
        "DPQ trains one model and encodes the base once for every length; each baseline is retrained and "
        "re-encoded per length.",
        "",
        "| method | lengths | models trained | train s (total) | encode s (total) |",
        "|---|---:|---:|---:|---:|",
    ]
    for t in results["training_totals"]:
        lines.append(f"| {t['method']} | {t['lengths']} | {t['models_trained']} | {t['train_s']:.2f} | "
                     f"{t['encode_s']:.2f} |")
    lines += ["", "## Configurations", ""]
    seen = set()
    for r in sorted(results["rows"], key=_row_order):
        if r["status"] == "ok" and r["description"] not in seen:
            seen.add(r["description"])
            lines.append(f"- {r['total_bytes'] if r['method'] != 'Flat' else 4 * ds['d']} B, "
                         f"{r['method']}: {r['description']}")
    lines += [
        "",
        "Column notes: *code B* are the quantization codes, *extra B* the per-vector norms or scalars the "
        "method stores beside them; *R r@k* is the fraction of the true r nearest neighbours found in the top k; "
        "mAP@100 (labelled data only) averages, over queries, the precision at each result sharing the query's "
        "class, divided by the number of such results in the top 100; *build MB* is the peak growth of the "
        "process's resident memory while training and encoding (approximate).",
    ]
    notes = list(results["notes"])
    for warning, where in results["faiss_warnings"].items():
        notes.append(f"Faiss printed \"{warning}\" while training: {', '.join(where)}.")
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    if results.get("plots"):
        lines += ["", "## Plots", ""] + [f"![{Path(p).stem}]({p})" for p in results["plots"]]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- plots
def write_plots(results: dict, out: Path) -> list:
    """recall_vs_bytes.png and qps_vs_recall.png; returns their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in results["rows"] if r["status"] == "ok" and r["method"] != "Flat"]
    methods = [m for m in METHOD_ORDER if any(r["method"] == m for r in rows)]
    series = {m: sorted((r for r in rows if r["method"] == m), key=lambda r: r["total_bytes"]) for m in methods}
    style = {m: dict(marker="o", lw=2.5 if m == "DPQ" else 1.2, color=f"C{i}") for i, m in enumerate(methods)}
    title = f"{results['dataset']['name']} ({results['dataset']['metric']}, d={results['dataset']['d']})"

    panels = [("recall_10_at_10", "10-recall@10"), ("recall_1_at_100", "1-recall@100")]
    if results["dataset"]["labels"]:
        panels.append(("map_at_100", "mAP@100 (class labels)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, (key, label) in zip(axes[0], panels):
        for m in methods:
            pts = [(r["total_bytes"], r[key]) for r in series[m] if r[key] is not None]
            if pts:
                ax.plot(*zip(*pts), label=m, **style[m])
        flat = [r[key] for r in results["rows"] if r["method"] == "Flat" and r[key] is not None]
        if flat:
            ax.axhline(flat[0], color="gray", ls="--", lw=1, label="Flat (exact)")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("total bytes per vector (codes + norms)")
        ax.set_ylabel(label)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"Quality vs bytes per vector — {title}")
    fig.tight_layout()
    fig.savefig(out / "recall_vs_bytes.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for m in methods:
        pts = [(r["recall_10_at_10"], r["qps_1_thread"], r["total_bytes"]) for r in series[m]
               if r["recall_10_at_10"] is not None]
        if pts:
            xs, ys, bs = zip(*pts)
            ax.plot(xs, ys, label=m, **style[m])
            for x, y, b in pts:
                ax.annotate(f"{b}B", (x, y), fontsize=6, textcoords="offset points", xytext=(3, 3))
    ax.set_yscale("log")
    ax.set_xlabel("10-recall@10")
    ax.set_ylabel("queries per second (1 thread)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"Speed vs quality — {title}")
    fig.tight_layout()
    fig.savefig(out / "qps_vs_recall.png", dpi=110)
    plt.close(fig)
    return ["recall_vs_bytes.png", "qps_vs_recall.png"]
