"""flashkmeans.train_ivf: a faiss IVF index trained with flashkmeans searches
as well as one trained by faiss itself (recall@10 within 0.01)."""

import numpy as np
import pytest

import flashkmeans

faiss = pytest.importorskip("faiss")


@pytest.fixture(scope="module")
def data():
    rs = np.random.RandomState(42)
    centres = rs.randn(200, 32) * 2
    def sample(n):
        return (centres[rs.randint(200, size=n)] + rs.randn(n, 32)).astype(np.float32)
    xt, xb, xq = sample(20000), sample(20000), sample(200)
    gt = faiss.knn(xq, xb, 10)[1]
    return xt, xb, xq, gt


def recall_at_10(index, xb, xq, gt, nprobe=4):
    index.add(xb)
    faiss.extract_index_ivf(index).nprobe = nprobe
    I = index.search(xq, 10)[1]
    return np.mean([len(set(I[i]) & set(gt[i])) / 10 for i in range(len(xq))])


@pytest.mark.parametrize("key", ["IVF64,Flat", "PCA16,IVF64,Flat", "IVF64,SQ8"])
def test_recall_matches_faiss_training(data, key):
    xt, xb, xq, gt = data
    ref = faiss.index_factory(32, key)
    ref.train(xt)
    ours = faiss.index_factory(32, key)
    flashkmeans.train_ivf(ours, xt, backend="cpu")
    assert ours.is_trained
    r_ref = recall_at_10(ref, xb, xq, gt)
    r_ours = recall_at_10(ours, xb, xq, gt)
    assert abs(r_ours - r_ref) <= 0.01, (r_ours, r_ref)
    # same subsample, same seeds: the same coarse centroids up to rounding
    q_ref = faiss.extract_index_ivf(ref).quantizer.reconstruct_n(0, 64)
    q_ours = faiss.extract_index_ivf(ours).quantizer.reconstruct_n(0, 64)
    np.testing.assert_allclose(q_ours, q_ref, rtol=1e-4, atol=1e-4 * np.abs(q_ref).max())


def test_inner_product_ivf(data):
    xt, xb, xq, _ = data
    ref = faiss.index_factory(32, "IVF64,Flat", faiss.METRIC_INNER_PRODUCT)
    ref.train(xt)
    ours = faiss.index_factory(32, "IVF64,Flat", faiss.METRIC_INNER_PRODUCT)
    flashkmeans.train_ivf(ours, xt, backend="cpu")
    q_ref = faiss.extract_index_ivf(ref).quantizer.reconstruct_n(0, 64)
    q_ours = faiss.extract_index_ivf(ours).quantizer.reconstruct_n(0, 64)
    np.testing.assert_allclose(q_ours, q_ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(q_ours, axis=1), 1, rtol=1e-5)


def test_kwargs_override_the_ivf_cp(data):
    xt = data[0]
    index = faiss.index_factory(32, "IVF64,Flat")
    km = flashkmeans.train_ivf(index, xt, niter=3, early_stop_threshold=-1)
    assert len(km.obj) == 3
    assert index.is_trained and index.quantizer.ntotal == 64


def test_bad_indexes_raise(data):
    xt = data[0]
    with pytest.raises(ValueError, match="IVF|IndexIVF"):
        flashkmeans.train_ivf(faiss.IndexFlatL2(32), xt)
    with pytest.raises(ValueError, match="IndexIVF"):
        flashkmeans.train_ivf(faiss.IndexIDMap(faiss.index_factory(32, "IVF64,Flat")), xt)
    trained = faiss.index_factory(32, "IVF64,Flat")
    trained.train(xt)
    with pytest.raises(ValueError, match="already trained"):
        flashkmeans.train_ivf(trained, xt)
    with pytest.raises(ValueError, match="dimension"):
        flashkmeans.train_ivf(faiss.index_factory(16, "IVF64,Flat"), xt)
    with pytest.raises(ValueError, match="training points"):
        flashkmeans.train_ivf(faiss.index_factory(32, "IVF64,Flat"), xt[:10])
    with pytest.raises(AttributeError):
        flashkmeans.train_ivf(faiss.index_factory(32, "IVF64,Flat"), xt, nitre=3)
