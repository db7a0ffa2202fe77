import faiss
import numpy as np
import pytest

import pyfaiss_dpq


@pytest.fixture(scope="session")
def data():
    """Clustered synthetic vectors: (train, base, queries), d = 24."""
    rng = np.random.default_rng(1234)
    centers = rng.standard_normal((40, 24)).astype(np.float32) * 3
    def sample(n):
        return (centers[rng.integers(0, 40, n)] + rng.standard_normal((n, 24))).astype(np.float32)
    return sample(3000), sample(1500), sample(20)


@pytest.fixture(scope="session")
def trained(data):
    """Codebooks trained once per (nbits, metric): dict -> (levels, K, d)."""
    xt = data[0]
    cache = {}
    def get(nbits, levels=6):
        key = (nbits, levels)
        if key not in cache:
            index = pyfaiss_dpq.IndexDPQ(xt.shape[1], levels, nbits)
            index.train(xt)
            cache[key] = index.codebooks
        return cache[key]
    return get


@pytest.fixture
def make_index(trained, data):
    """An IndexDPQ with trained codebooks, optionally filled with the base vectors."""
    def make(nbits=8, metric=faiss.METRIC_L2, levels=6, fill=True):
        index = pyfaiss_dpq.IndexDPQ(data[0].shape[1], levels, nbits, metric)
        index.codebooks = trained(nbits, levels)
        if fill:
            index.add(data[1])
        return index
    return make


@pytest.fixture(scope="module")
def torch_and_faiss_on_one_thread():
    """Torch and Faiss on one thread for a module (deterministic training); restored after."""
    import torch  # only the modules that train ask for this: the rest of the suite runs without torch

    before = torch.get_num_threads(), faiss.omp_get_max_threads()
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    yield
    torch.set_num_threads(before[0])
    faiss.omp_set_num_threads(before[1])


@pytest.fixture
def kernel_runner():
    """Runs a callable at a forced SIMD level, restoring the previous setting."""
    import pyfaiss_dpq

    def run(name, fn):
        previous = pyfaiss_dpq.set_simd_level(name)
        try:
            return fn()
        finally:
            pyfaiss_dpq.set_simd_level(previous)
    return run
