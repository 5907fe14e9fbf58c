"""Every keyword faiss.Kmeans (faiss-cpu 1.15) takes, one by one: either it
works as in faiss (the same run as faiss.Kmeans with that keyword: same
centroids and objectives to float rounding, or for a random draw of
another generator, the same quality), or it is rejected with a ValueError
that says what to use instead. The keyword lists are checked against the
installed faiss, so a new faiss field cannot go unnamed."""

import numpy as np
import pytest

import flashkmeans

faiss = pytest.importorskip("faiss")

D, K = 12, 10

# keyword -> a value other than the default, run beside faiss.Kmeans
SAME_RUN_AS_FAISS = {
    "niter": 7,
    "nredo": 3,
    "verbose": True,
    "spherical": True,
    "int_centroids": True,
    "update_index": True,
    "frozen_centroids": True,  # with init_centroids, below
    "min_points_per_centroid": 400,  # only faiss's "too few points" warning
    "max_points_per_centroid": 60,  # subsampling, with faiss's permutation
    "seed": 77,
    "decode_block_size": 1000,  # faiss's train_encoded only
    "check_input_data_for_NaNs": False,
    "init_method": 0,  # faiss.ClusteringInitMethod_RANDOM, the default
    "afkmc2_chain_length": 10,  # read only by AFK-MC2
    "early_stop_threshold": -1.0,  # 0 (the default) is every other case here
    "gpu": False,
    "progressive_dim_steps": 3,
    "apply_pca": False,  # with progressive_dim_steps
}
# keyword -> (rejected value, what the error must say)
REJECTED = {
    "use_faster_subsampling": (True, "leave it False"),
    "use_super_kmeans": (True, "leave it False"),
    "init_method": (2, "use init_method=1"),
    "early_stop_threshold": (0.1, "use 0"),
}
# the same meaning, another random generator: compared by quality
SAME_MEANING = {"init_method": 1}  # k-means++


def faiss_keywords():
    fields = {name for name in dir(faiss.ProgressiveDimClusteringParameters())
              if not name.startswith("_") and name not in ("this", "thisown")}
    return fields | {"gpu"}


def test_every_faiss_keyword_is_named_here():
    named = set(SAME_RUN_AS_FAISS) | set(REJECTED) | set(SAME_MEANING)
    assert named == faiss_keywords()


@pytest.fixture(scope="module")
def x():
    rs = np.random.RandomState(8)
    centres = rs.randn(K, D) * 3
    return (centres[rs.randint(K, size=1500)] + rs.randn(1500, D)).astype(np.float32) * 4


# ids not equal to a keyword: conftest skips tests whose keywords include "gpu"
@pytest.mark.parametrize("keyword", sorted(SAME_RUN_AS_FAISS),
                         ids=[f"{name}=" for name in sorted(SAME_RUN_AS_FAISS)])
def test_keyword_gives_faiss_run(x, keyword, capfd):
    value = SAME_RUN_AS_FAISS[keyword]
    kwargs = {keyword: value}
    if keyword == "apply_pca":
        kwargs["progressive_dim_steps"] = 3
    train = {}
    if keyword == "frozen_centroids":
        train["init_centroids"] = x[:4].copy()
    ours = flashkmeans.Kmeans(D, K, backend="cpu", **kwargs)
    ref = faiss.Kmeans(D, K, **kwargs)
    obj = ours.train(x, **train)
    obj_ref = ref.train(x, **train)
    capfd.readouterr()  # verbose output
    if keyword == "progressive_dim_steps":
        # the PCA's eigenvectors may differ in sign: same objective, not same centroids
        assert obj == pytest.approx(obj_ref, rel=1e-3)
    else:
        np.testing.assert_allclose(ours.obj, ref.obj, rtol=1e-4)
        np.testing.assert_allclose(ours.centroids, ref.centroids, rtol=1e-4, atol=1e-3)
    assert len(ours.obj) == len(ref.obj)
    if keyword == "frozen_centroids":
        np.testing.assert_array_equal(ours.centroids[:4], x[:4])
    if keyword == "int_centroids":
        np.testing.assert_array_equal(ours.centroids, np.round(ours.centroids))


def test_verbose_prints_faiss_lines(x, capfd):
    flashkmeans.Kmeans(D, K, backend="cpu", verbose=True, niter=3).train(x)
    out = capfd.readouterr().out
    assert "Clustering 1500 points in 12D to 10 clusters" in out
    assert "Iteration 2" in out


def test_kmeanspp_init_method_is_kmeanspp(x):
    # faiss's k-means++ and the engine's draw from other generators: both
    # seed every blob, so both end at the noise floor
    ours = flashkmeans.Kmeans(D, K, backend="cpu", init_method=1, niter=20)
    ref = faiss.Kmeans(D, K, init_method=1, niter=20)
    ours.train(x)
    ref.train(x)
    assert ours.obj[-1] == pytest.approx(ref.obj[-1], rel=0.05)
    # and unlike random seeding, from the first iteration
    first_random = flashkmeans.Kmeans(D, K, backend="cpu", niter=1)
    first_random.train(x)
    assert ours.obj[0] < first_random.obj[0]


@pytest.mark.parametrize("keyword", sorted(REJECTED))
def test_unsupported_value_is_rejected_saying_what_to_use(x, keyword):
    value, advice = REJECTED[keyword]
    km = flashkmeans.Kmeans(D, K, **{keyword: value})
    with pytest.raises(ValueError, match=advice) as e:
        km.train(x)
    assert keyword in str(e.value)
