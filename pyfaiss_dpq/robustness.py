"""Adversarial audit of quantization-based retrieval (PQ-AG, Feng et al., AAAI 2020).

Small perturbations of a query, bounded by ||delta||_inf <= eps, can move
it into other codeword cells and replace the neighbours it retrieves. Two
attackers:

- white-box (``method="white"``) knows the model: projected gradient descent
  through the *soft* quantization, as PQ-AG, pushing the soft
  reconstruction of the perturbed query (every prefix level of a DPQ model,
  the concatenated sub-quantizers of a ``faiss.IndexPQ``) away in cosine
  from the hard reconstruction of the original query;
- black-box (``method="black"``) sees search results only: natural-evolution
  gradient estimates (antithetic Gaussian samples) of how many of the
  original top-k come back, and how high, then sign steps.

:func:`report` measures how much of the original top-k survives, and label
precision when labels are given, against eps for one index.

    >>> from pyfaiss_dpq import robustness  # doctest: +SKIP
    >>> adv = robustness.attack(model, queries, eps=0.05, index=index, method="black")  # doctest: +SKIP
    >>> rows = robustness.report(model, index, queries, [0.02, 0.05, 0.1])  # doctest: +SKIP
"""

from __future__ import annotations

import faiss
import numpy as np

METHODS = ("white", "black")


def attack(model, queries, eps: float, index=None, *, method: str = "white", k: int = 10, steps: int = 20,
           step_size: float | None = None, samples: int = 10, sigma: float | None = None, params=None,
           clip: tuple[float, float] | None = None, seed: int = 0) -> np.ndarray:
    """Perturbed copies of `queries` that push their retrieved neighbours away, with ||delta||_inf <= eps.

    Parameters
    ----------
    model : DPQModel, faiss.IndexPQ or None
        What the white-box attacker differentiates through (a trained model,
        or an IndexPQ's codebooks), and what turns a query into the index's
        input (a DPQModel whose index takes features encodes the queries with
        ``encode_query``). None: the index takes the raw queries (black-box only).
    queries : array (n, ...)
        Raw queries: the model's input shape, or (n, d) for an index.
    eps : float
        L-infinity budget, > 0.
    index : faiss.Index, optional
        The index the queries search; required for ``method="black"``.
    method : {"white", "black"}
    k : int
        Neighbours whose loss the black-box attacker scores (it searches 4 k deep).
    steps : int
        Gradient (white) or estimate (black) steps.
    step_size : float, optional
        Size of each sign step; default 2.5 eps / steps.
    samples, sigma : int, float, optional
        Black box: antithetic pairs per estimate and their scale (default eps).
    params : faiss.SearchParameters, optional
        Passed to every search of the black-box attacker.
    clip : (low, high), optional
        Valid input range (e.g. (0, 1) for images); perturbed queries are clipped to it.
    seed : int
        Seed of the black-box samples.

    Returns
    -------
    numpy.ndarray, float32, the shape of `queries`.
    """
    x = _check_queries(queries)
    _check_budget(eps, steps, k)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    step_size = 2.5 * eps / steps if step_size is None else float(step_size)
    if not step_size > 0:
        raise ValueError(f"step_size must be positive, got {step_size}")
    if method == "white":
        if model is None:
            raise ValueError("the white-box attack needs a model: a DPQModel or a faiss.IndexPQ")
        return _white_box(_Differentiable(model), x, eps, steps, step_size, clip)
    if index is None:
        raise ValueError("the black-box attack needs the index it searches: index=...")
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    sigma = eps if sigma is None else float(sigma)
    search = _searcher(model, index, params)
    return _black_box(search, x, eps, k, steps, step_size, samples, sigma, clip, seed)


def report(model, index, queries, eps_values, *, k: int = 10, methods=METHODS, params=None,
           base_labels=None, query_labels=None, **attack_options) -> list[dict]:
    """Retrieval under attack for each eps and method: one row per (method, eps), eps = 0 first.

    Each row holds ``method``, ``eps``, ``overlap`` (mean fraction of each
    query's original top-k still in its top-k), ``precision`` (mean fraction
    of the top-k sharing the query's label; with labels only) and
    ``linf`` (the largest ||delta||_inf, within eps). Searches use `params`;
    the attacks take `attack_options` (steps, samples, clip, ...).
    """
    x = _check_queries(queries)
    search = _searcher(model, index, params)
    original = search(x, k)
    if (base_labels is None) != (query_labels is None):
        raise ValueError("give both base_labels and query_labels, or neither")

    def row(method, eps, adv):
        ids = search(adv, k)
        out = {"method": method, "eps": float(eps), "overlap": _overlap(original, ids),
               "linf": float(np.abs(adv - x).max()) if eps else 0.0}
        if base_labels is not None:
            out["precision"] = float((np.asarray(base_labels)[ids] == np.asarray(query_labels)[:, None]).mean())
        return out

    rows = [row("none", 0.0, x)]
    for method in methods:
        for eps in eps_values:
            rows.append(row(method, eps, attack(model, x, eps, index, method=method, k=k, params=params,
                                                **attack_options)))
    return rows


def format_report(rows: list[dict], name: str = "") -> str:
    """Markdown table of :func:`report` rows."""
    has_precision = "precision" in rows[0]
    head = "| index | attack | eps | top-k overlap |" + (" precision@k |" if has_precision else "")
    lines = [head, "|---|---|---:|---:|" + ("---:|" if has_precision else "")]
    for r in rows:
        line = f"| {name} | {r['method']} | {r['eps']:g} | {r['overlap']:.3f} |"
        if has_precision:
            line += f" {r['precision']:.3f} |"
        lines.append(line)
    return "\n".join(lines)


# ---------------------------------------------------------------- white box
class _Differentiable:
    """Features and soft/hard reconstructions (levels, n, d) of a DPQModel or a faiss.IndexPQ, in torch."""

    def __init__(self, model):
        import torch

        self.torch = torch
        pq = getattr(faiss.downcast_index(model), "pq", None) if isinstance(model, faiss.Index) else None
        if pq is not None:
            M, ksub, dsub = pq.M, pq.ksub, pq.dsub
            self.centroids = torch.from_numpy(faiss.vector_to_array(pq.centroids).reshape(M, ksub, dsub))
            self.model = None
            self.d = M * dsub
            self.scale = None
        elif hasattr(model, "quantizer") and hasattr(model, "query_features"):
            self.model = model.eval()
        else:
            raise TypeError(f"model must be a DPQModel or a faiss.IndexPQ, got {type(model).__name__}")

    def features(self, x):
        if self.model is not None:
            return self.model.query_features(x.to(self.model.device))
        f = x.flatten(1)
        if f.shape[1] != self.d:
            raise ValueError(f"queries have dimension {f.shape[1]} but the IndexPQ takes {self.d}")
        return f

    def reconstructions(self, f):
        """(soft, hard), each (levels, n, d): a DPQ model's prefix levels, or PQ's one full code.

        PQ's soft assignment is softmax(-||x_m - c||^2 / s) with s the mean
        distance of the first queries seen to their nearest codeword: soft
        enough to have a gradient at any data scale.
        """
        torch = self.torch
        if self.model is not None:
            q = self.model.quantizer(f)
            return q.soft, q.hard
        M, ksub, dsub = self.centroids.shape
        sub = f.reshape(len(f), M, dsub).transpose(0, 1)  # (M, n, dsub)
        dist = torch.cdist(sub, self.centroids).pow(2)  # (M, n, ksub)
        if self.scale is None:
            self.scale = dist.min(-1).values.mean().detach().clamp_min(1e-12)
        soft = torch.softmax(-dist / self.scale, -1) @ self.centroids
        hard = self.centroids.gather(1, dist.argmin(-1)[..., None].expand(-1, -1, dsub))
        return soft.transpose(0, 1).reshape(1, len(f), -1), hard.transpose(0, 1).reshape(1, len(f), -1)


def _white_box(diff: _Differentiable, x: np.ndarray, eps, steps, step_size, clip) -> np.ndarray:
    """PQ-AG: PGD minimizing the mean cosine between the perturbed soft and the original hard reconstructions."""
    torch = diff.torch
    x0 = torch.from_numpy(x)
    with torch.no_grad():
        target = diff.reconstructions(diff.features(x0))[1]
    delta = torch.zeros_like(x0)
    for _ in range(steps):
        delta.requires_grad_(True)
        with torch.enable_grad():
            soft = diff.reconstructions(diff.features(x0 + delta))[0]
            loss = torch.nn.functional.cosine_similarity(soft, target.to(soft.device), dim=-1).mean()
            grad, = torch.autograd.grad(loss, delta)
        with torch.no_grad():
            delta = _project(x0, delta - step_size * grad.sign(), eps, clip)
    return (x0 + delta).numpy().astype(np.float32)


# ---------------------------------------------------------------- black box
def _black_box(search, x, eps, k, steps, step_size, samples, sigma, clip, seed) -> np.ndarray:
    """NES on the rank-weighted count of original neighbours returned 4 k deep; keeps each query's best."""
    import torch

    rng = np.random.default_rng(seed)
    depth = 4 * k
    original = search(x, k)
    x0 = torch.from_numpy(x)
    delta = torch.zeros_like(x0)
    best, best_score = x.copy(), _kept(original, search(x, depth), depth)
    n, shape = len(x), x.shape[1:]
    for _ in range(steps):
        u = rng.standard_normal((samples, n) + shape).astype(np.float32)
        probes = np.concatenate([(x0 + delta).numpy()[None] + sigma * u, (x0 + delta).numpy()[None] - sigma * u])
        ids = search(probes.reshape((-1,) + shape), depth).reshape(2 * samples, n, depth)
        scores = np.stack([_kept(original, ids[s], depth) for s in range(2 * samples)])  # (2S, n)
        diff = scores[:samples] - scores[samples:]  # (S, n)
        grad = np.einsum("sn,sn...->n...", diff, u) / (2 * samples * sigma)
        delta = _project(x0, delta - step_size * torch.from_numpy(np.sign(grad).astype(np.float32)), eps, clip)
        adv = (x0 + delta).numpy().astype(np.float32)
        score = _kept(original, search(adv, depth), depth)
        better = score < best_score
        best[better], best_score[better] = adv[better], score[better]
    return best


def _kept(original: np.ndarray, ids: np.ndarray, depth: int) -> np.ndarray:
    """Per query: sum over the original top-k of (depth - rank) / depth where returned, 0 where not."""
    weight = (depth - np.arange(ids.shape[1])) / depth
    hit = ids[:, None, :] == original[:, :, None]  # (n, k, depth)
    return (hit * weight).sum((1, 2))


# ---------------------------------------------------------------- helpers
def _project(x0, delta, eps, clip):
    delta = delta.clamp(-eps, eps)
    if clip is not None:
        delta = (x0 + delta).clamp(*clip) - x0
    return delta


def _searcher(model, index, params):
    """search(x, k) -> ids (n, k): raw queries through the model's query side (when the index takes features)."""
    if index is None:
        raise ValueError("index is required")
    takes_features = False
    if model is not None and hasattr(model, "encode_query"):
        from .train.export import is_native

        takes_features = not is_native(model)

    def search(x, k):
        q = model.encode_query(x) if takes_features else np.ascontiguousarray(x.reshape(len(x), -1))
        if q.shape[1] != index.d:
            raise ValueError(f"queries give vectors of dimension {q.shape[1]} but the index takes {index.d}")
        if params is None:
            return index.search(q, k)[1]
        return index.search(q, k, params=params)[1]

    return search


def _overlap(original: np.ndarray, ids: np.ndarray) -> float:
    return float(np.mean([len(np.intersect1d(a, b)) / len(a) for a, b in zip(original, ids)]))


def _check_queries(queries) -> np.ndarray:
    x = np.asarray(queries)
    if x.dtype.kind not in "fiu":
        raise TypeError(f"queries must be real numbers, got dtype {x.dtype}")
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(f"queries must be a non-empty batch (n, ...), got shape {x.shape}")
    x = np.array(x, dtype=np.float32, order="C")
    if not np.isfinite(x).all():
        raise ValueError("queries contain NaN or infinity")
    return x


def _check_budget(eps, steps, k) -> None:
    if not (isinstance(eps, (int, float, np.floating)) and eps > 0 and np.isfinite(eps)):
        raise ValueError(f"eps must be a positive finite number, got {eps!r}")
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
