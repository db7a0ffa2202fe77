"""Export a trained model into IndexDPQ, wrapped in native Faiss transforms when possible.

Identity and linear encoders become a plain Faiss pipeline::

    faiss.IndexPreTransform([LinearTransform,] [NormalizationTransform,] IndexDPQ)

which takes raw inputs (flattened to (n, d_in)). Any other encoder cannot be
expressed in Faiss: the index then takes features, and ``model.encode`` must
be applied to the database and the queries alike.
"""

from __future__ import annotations

import faiss
import numpy as np

from ..index import IndexDPQ
from .encoders import Identity, Linear

METRICS = {"l2": faiss.METRIC_L2, "ip": faiss.METRIC_INNER_PRODUCT,
           faiss.METRIC_L2: faiss.METRIC_L2, faiss.METRIC_INNER_PRODUCT: faiss.METRIC_INNER_PRODUCT}


def faiss_metric(metric) -> int:
    """faiss.METRIC_* for "l2", "ip" or a faiss metric constant."""
    if isinstance(metric, str):
        metric = metric.lower()
    if metric not in METRICS:
        raise ValueError(f"metric must be 'l2', 'ip', faiss.METRIC_L2 or faiss.METRIC_INNER_PRODUCT, got {metric!r}")
    return METRICS[metric]


def is_native(model) -> bool:
    """True when the model's encoder maps to Faiss transforms (identity or linear) and queries share it."""
    return isinstance(model.encoder, (Identity, Linear)) and getattr(model, "query_encoder", None) is None


def to_index(model, metric=None, beam_size: int | None = None):
    """A trained, empty index with the model's codebooks (levels, K, dim).

    Parameters
    ----------
    model : DPQModel
    metric : "l2", "ip", "cosine" or faiss.METRIC_*, optional
        Defaults to the model's (inner product for supervised and contrastive
        models, whose retrieval ranks by <query feature, reconstruction>).
        "cosine": an inner-product IndexDPQ with ``cosine=True``.
    beam_size : int, optional
        Beam width IndexDPQ encodes with on ``add``; default the model's own
        (``config["beam"]``), so that ``add`` assigns ``model.codes``.

    Returns
    -------
    IndexDPQ over features, or faiss.IndexPreTransform over raw inputs when
    ``is_native(model)``.
    """
    metric = metric if metric is not None else model.config["metric"]
    cosine = isinstance(metric, str) and metric.lower() == "cosine"
    index = IndexDPQ(model.dim, model.levels, model.nbits,
                     faiss.METRIC_INNER_PRODUCT if cosine else faiss_metric(metric), cosine=cosine)
    index.codebooks = model.codebooks
    index.beam_size = model.config["beam"] if beam_size is None else beam_size
    if not is_native(model):
        return index
    transforms = []
    if isinstance(model.encoder, Linear):
        transforms.append(_linear_transform(model.encoder))
    if model.config["normalize"]:
        transforms.append(faiss.NormalizationTransform(model.dim, 2.0))
    if not transforms:
        return index
    pipeline = faiss.IndexPreTransform(index)
    for t in reversed(transforms):
        pipeline.prepend_transform(t)
    pipeline.referenced_objects = [index, *transforms]
    return pipeline


def _linear_transform(encoder: Linear) -> faiss.LinearTransform:
    A = encoder.fc.weight.detach().cpu().numpy().astype(np.float32)  # (dim, d_in)
    b = encoder.fc.bias.detach().cpu().numpy().astype(np.float32)
    lt = faiss.LinearTransform(A.shape[1], A.shape[0], True)
    faiss.copy_array_to_vector(A.ravel(), lt.A)
    faiss.copy_array_to_vector(b, lt.b)
    lt.is_trained = True
    return lt
