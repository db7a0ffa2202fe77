"""Faiss baselines configured to an exact byte budget per vector.

Every ``plan_*`` function takes the dimension, the metric and the total bytes
per vector ``total`` that DPQ uses at one code length, and returns either a
:class:`Plan` whose index stores exactly ``total`` bytes per vector, or a
string saying why the method cannot be configured at that size.

Fairness rules: Faiss's default training settings; 8-bit codes except
PQFastScan (4-bit, its only setting); where Faiss needs the dimension to be a
multiple of the number of sub-quantizers the vectors are zero-padded (a
lossless ``RemapDimensionsTransform``), OPQ instead rotates into the padded
dimension, and RaBitQ gets a random rotation into the dimension that fills
its budget. Additive quantizers (RQ, LSQ) spend 1 byte of the budget on a
norm for L2 quantized to 8 bits (``ST_norm_qint8``, the "_Nqint8" of Faiss's
factory strings) and none for inner product.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union

import faiss

METHODS = ("PQ", "PQFastScan", "OPQ+PQ", "RQ", "LSQ", "RaBitQ")


@dataclass
class Plan:
    """One baseline configuration.

    ``build`` returns a fresh untrained index; ``code_bytes + extra_bytes``
    (extra: norms or per-vector scalars) is the planned total.
    """

    method: str
    description: str
    code_bytes: int
    extra_bytes: int
    build: Callable[[], faiss.Index]
    sub_quantizers: int = 0

    @property
    def total_bytes(self) -> int:
        return self.code_bytes + self.extra_bytes


def _round_up(d: int, multiple: int) -> int:
    return -(-d // multiple) * multiple


def _with_transform(transform, index: faiss.Index) -> faiss.Index:
    wrapped = faiss.IndexPreTransform(transform, index)
    wrapped.referenced_objects = [transform, index]
    return wrapped


def _padded(d: int, d_pad: int, index: faiss.Index) -> faiss.Index:
    if d_pad == d:
        return index
    return _with_transform(faiss.RemapDimensionsTransform(d, d_pad, True), index)


def _pad_note(d: int, d_pad: int, M: int) -> str:
    note = "" if d_pad == d else f", zero-padded {d}->{d_pad}"
    return note + (" (more sub-quantizers than dimensions: the extra ones code padding)" if M > d else "")


def plan_pq(d: int, metric: int, total: int) -> Union[Plan, str]:
    M = total
    d_pad = _round_up(d, M)
    return Plan("PQ", f"IndexPQ M={M} x 8 bits{_pad_note(d, d_pad, M)}", M, 0,
                lambda: _padded(d, d_pad, faiss.IndexPQ(d_pad, M, 8, metric)), M)


def plan_pq_fastscan(d: int, metric: int, total: int) -> Union[Plan, str]:
    M = 2 * total
    d_pad = _round_up(d, M)
    return Plan("PQFastScan", f"IndexPQFastScan M={M} x 4 bits{_pad_note(d, d_pad, M)}", total, 0,
                lambda: _padded(d, d_pad, faiss.IndexPQFastScan(d_pad, M, 4, metric)), M)


def plan_opq(d: int, metric: int, total: int) -> Union[Plan, str]:
    M = total
    d_out = _round_up(d, M)

    def build():
        return _with_transform(faiss.OPQMatrix(d, M, d_out), faiss.IndexPQ(d_out, M, 8, metric))

    note = "" if d_out == d else f", rotated {d}->{d_out}"
    return Plan("OPQ+PQ", f"OPQMatrix + IndexPQ M={M} x 8 bits{note}", M, 0, build, M)


def _plan_additive(name: str, cls, d: int, metric: int, total: int) -> Union[Plan, str]:
    if metric == faiss.METRIC_L2:
        M, norm_bytes, search_type = total - 1, 1, faiss.AdditiveQuantizer.ST_norm_qint8
        norm = "norm qint8 (1 B)"
    else:
        M, norm_bytes, search_type = total, 0, faiss.AdditiveQuantizer.ST_LUT_nonorm
        norm = "no norm"
    if M < 1:
        return f"{total} B leaves no room for codes beside the 1-byte norm"
    return Plan(name, f"{cls.__name__} M={M} x 8 bits, {norm}", M, norm_bytes,
                lambda: cls(d, M, 8, metric, search_type), M)


def plan_rq(d: int, metric: int, total: int) -> Union[Plan, str]:
    return _plan_additive("RQ", faiss.IndexResidualQuantizer, d, metric, total)


LSQ_TABLE_LIMIT = 256 * 2**20


def plan_lsq(d: int, metric: int, total: int) -> Union[Plan, str]:
    plan = _plan_additive("LSQ", faiss.IndexLocalSearchQuantizer, d, metric, total)
    # LSQ's encoder keeps a float table of every codeword pair: (M * 256)^2 entries.
    if isinstance(plan, Plan) and 4 * (plan.sub_quantizers * 256) ** 2 > LSQ_TABLE_LIMIT:
        table_mb = 4 * (plan.sub_quantizers * 256) ** 2 / 2**20
        return f"M={plan.sub_quantizers} needs a {table_mb:.0f} MB codeword-pair table per encoding pass"
    return plan


def plan_rabitq(d: int, metric: int, total: int) -> Union[Plan, str]:
    """Bits per dimension: the most (of 1, 2, 4, 8) that still leave >= d rotated dimensions."""
    options = []
    for nb in (1, 2, 4, 8):
        scalars = faiss.IndexRaBitQ(8, metric, nb).code_size - nb  # 8 dims take nb bytes
        d_out = 8 * (total - scalars) // nb
        if d_out >= 8 and faiss.IndexRaBitQ(d_out, metric, nb).code_size == total:
            options.append((nb, d_out, scalars))
    if not options:
        return f"{total} B is below RaBitQ's per-vector scalars plus one byte of code"
    full = [o for o in options if o[1] >= d]
    nb, d_out, scalars = full[-1] if full else options[0]
    kind = "rotated" if d_out >= d else "randomly projected"

    def build():
        return _with_transform(faiss.RandomRotationMatrix(d, d_out), faiss.IndexRaBitQ(d_out, metric, nb))

    return Plan("RaBitQ", f"RandomRotation {d}->{d_out} ({kind}) + IndexRaBitQ {nb} bit(s)/dim",
                total - scalars, scalars, build)


PLANNERS = {
    "PQ": plan_pq,
    "PQFastScan": plan_pq_fastscan,
    "OPQ+PQ": plan_opq,
    "RQ": plan_rq,
    "LSQ": plan_lsq,
    "RaBitQ": plan_rabitq,
}


def stored_bytes_per_vector(index: faiss.Index) -> int:
    """Bytes per vector that a Faiss flat-code index stores (its ``code_size``)."""
    index = faiss.downcast_index(index)
    while isinstance(index, faiss.IndexPreTransform):
        index = faiss.downcast_index(index.index)
    return int(index.code_size)
