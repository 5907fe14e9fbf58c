"""Shared fixtures for the flashkmeans Python tests.

GPU tests carry @pytest.mark.gpu and skip themselves unless flashkmeans was
built with CUDA, a GPU is visible and torch (or cupy) can use it. faiss
parity tests skip when faiss is not installed (pytest.importorskip).
"""

import numpy as np
import pytest

import flashkmeans


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU (skipped otherwise)")


def pytest_collection_modifyitems(config, items):
    if flashkmeans.cuda_available():
        return
    skip = pytest.mark.skip(reason="no CUDA GPU visible to flashkmeans (or built without CUDA)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def blobs(n, d, k_true, seed=0, spread=0.3, dtype=np.float32):
    """n points around k_true Gaussian centres: structured data on which
    k-means assignments have no near-ties."""
    rs = np.random.RandomState(seed)
    centres = rs.randn(k_true, d)
    labels = rs.randint(k_true, size=n)
    return (centres[labels] + spread * rs.randn(n, d)).astype(dtype)


@pytest.fixture
def rs():
    return np.random.RandomState(1234)


@pytest.fixture
def torch_cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch cannot see a CUDA GPU")
    return torch


@pytest.fixture
def make_blobs():
    return blobs
