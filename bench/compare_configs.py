"""The configurations bench/compare.py runs, and the data it runs them on.

A configuration is (B, N, K, d, dtype[, skewed]); its data is a Gaussian
mixture drawn with a fixed seed on the host with numpy, so every mode (cpu,
full) and every machine sees the same numbers for the same configuration:

- K mixture centres uniform in [-1, 1]^d; each point = its centre + 0.1 * N(0, 1)
  noise (never zeros). Skewed: 90% of the points belong to 1% of the centres.
- The points are rounded to the configuration's dtype once (fp16 / bf16), and
  the float32 copy every exact implementation gets holds the rounded values:
  all implementations cluster exactly the same points.
- Rows are drawn in chunks of 2^18, chunk i by its own numpy Generator seeded
  with (seed, 1, i): the values do not depend on the number of threads that
  fill the chunks in parallel.
- Init: for problem b, K distinct points chosen by Generator((seed, 2, b));
  every implementation of a configuration starts from these centroids.

M = 2^20, as in bench/flash_kmeans_ref.py.
"""

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

M = 1 << 20
SEED = 7
CHUNK_ROWS = 1 << 18
DTYPE_SHORT = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}


def _count(n):
    return f"{n // M}M" if n % M == 0 else str(n)


@dataclass
class Config:
    """One k-means problem set: B independent problems of N points, K clusters."""

    B: int
    N: int
    K: int
    d: int
    dtype: str  # the storage type: what Flash-KMeans and the native modes get
    group: str  # --only selects by name substring or by this group
    skewed: bool = False
    note: str = ""
    cpu_impls: bool = True  # False: flashkmeans-cpu and faiss-cpu are skipped (CPU_SKIP)
    scenario: str = "kmeans"

    @property
    def name(self):
        base = f"{_count(self.N)}x{self.K}x{self.d}-{DTYPE_SHORT[self.dtype]}"
        if self.B > 1:
            base = f"{self.B}x{base}"
        return base + ("-skewed" if self.skewed else "")

    def flops_per_iter(self):
        """The assignment's multiply-adds x 2: what every estimate scales with."""
        return 2.0 * self.B * self.N * self.K * self.d


@dataclass
class IvfConfig:
    """The IVF scenario: build `factories` on N x d, train on nlist * 256 points."""

    N: int
    d: int
    nlist: int
    factories: tuple
    group: str
    trainers: tuple = None  # None: every trainer of the mode; else these, the others skipped
    nq: int = 1000
    nprobe: int = 16
    train_per_list: int = 256
    sigma: float = 0.6  # overlapping blobs, so recall@10 at nprobe=16 is below 1
    scenario: str = "ivf"
    note: str = ""

    @property
    def name(self):
        return f"ivf-{_count(self.N)}x{self.d}"

    @property
    def n_train(self):
        return min(self.N, self.nlist * self.train_per_list)


CPU_SKIP = ("skipped: in full mode the CPU implementations run on 1Mx1024x128-fp32 and 100000x100x128 only "
            "(the GPU time budget; --mode cpu is the CPU comparison)")


def _c(B, N, K, d, dtype, group, skewed=False, note="", cpu_impls=True):
    return Config(B, N, K, d, dtype, group, skewed, note, cpu_impls)


def _g(B, N, K, d, dtype, group, skewed=False, note="", cpu_impls=False):
    """A full-mode configuration: CPU implementations off unless asked for."""
    return Config(B, N, K, d, dtype, group, skewed, note, cpu_impls)


# --- full mode (GPU machine): every REFERENCE.md row, then the additions -------
# Groups are sized so that one `--only GROUP` call stays under ~9 minutes on an
# H100/H200 (see --dry-run, which prints the estimate per group).
FULL = [
    _g(32, 65536, 1024, 128, "float16", "g1", note="REFERENCE row 1 (batched)"),
    _g(1, M, 1024, 128, "float16", "g1", note="REFERENCE row 2"),
    _g(1, 100000, 100, 128, "float16", "g1", note="REFERENCE row 6", cpu_impls=True),
    _g(1, M, 1024, 128, "float32", "g1", note="REFERENCE row 7", cpu_impls=True),
    _g(1, M, 1024, 128, "bfloat16", "g1", note="bf16"),
    _g(1, M, 1024, 128, "float16", "g1", skewed=True, note="skewed: 90% of points in 1% of clusters"),
    _g(1, M, 1024, 96, "float16", "g1", note="d = 96"),
    _g(1, 100000, 100, 128, "float32", "g1", note="fp32", cpu_impls=True),
    _g(1, M, 8192, 128, "float16", "g2", note="REFERENCE row 3"),
    _g(1, 8 * M, 1024, 128, "float16", "g2", note="REFERENCE row 4"),
    _g(1, 4 * M, 4096, 128, "float16", "g2", note="REFERENCE row 5"),
    _g(1, M, 8192, 128, "float32", "g2", note="fp32"),
    _g(1, M, 4096, 768, "float16", "g3", note="REFERENCE row 8"),
    _g(1, M, 1024, 1024, "float16", "g3", note="d = 1024"),
    _g(1, M, 65536, 128, "float16", "g4", note="REFERENCE row 9"),
    _g(1, M, 100000, 128, "float16", "g4", note="K = 100000"),
]
# flashkmeans-cpu trains IVF in --mode cpu; here the GPU time goes to the GPU trainers
FULL_IVF = [
    IvfConfig(M, 128, 4096, ("IVF4096,Flat", "IVF4096,PQ32"), "ivf",
              trainers=("faiss-cpu", "faiss-gpu", "flashkmeans-gpu")),
    IvfConfig(4 * M, 128, 4096, ("IVF4096,Flat", "IVF4096,PQ32"), "ivf4m",
              trainers=("faiss-gpu", "flashkmeans-gpu"),
              note="larger set; trained on 4096 x 256 = 1M points, as FAISS would subsample"),
]

# --- cpu mode (no GPU, 2 cores: a few minutes): the same shapes scaled down ----
# N / 8 to N / 64 and K / 2 to K / 20, keeping d, dtype and the skew.
K128 = 131072
CPU = [
    _c(8, 16384, 1024, 128, "float16", "c1", note="scaled row 1 (batched)"),
    _c(1, K128, 1024, 128, "float16", "c1", note="scaled row 2"),
    _c(1, 32768, 4096, 128, "float16", "c1", note="scaled row 3 (larger K)"),
    _c(1, M, 256, 128, "float16", "c1", note="scaled row 4 (large N)"),
    _c(1, 65536, 2048, 128, "float16", "c1", note="scaled row 5"),
    _c(1, 100000, 100, 128, "float16", "c1", note="REFERENCE row 6 as is"),
    _c(1, K128, 1024, 128, "float32", "c1", note="scaled row 7 (fp32)"),
    _c(1, 32768, 1024, 768, "float16", "c1", note="scaled row 8 (d = 768)"),
    _c(1, 32768, 8192, 128, "float16", "c1", note="scaled row 9 (K = 8192)"),
    _c(1, K128, 1024, 96, "float16", "c1", note="d = 96"),
    _c(1, 16384, 1024, 1024, "float16", "c1", note="d = 1024"),
    _c(1, 50000, 5000, 128, "float16", "c1", note="large K: 10 points per cluster, as 1M / 100000"),
    _c(1, K128, 1024, 128, "bfloat16", "c1", note="bf16"),
    _c(1, K128, 1024, 128, "float16", "c1", skewed=True, note="skewed: 90% of points in 1% of clusters"),
    _c(1, 100000, 100, 128, "float32", "c1", note="fp32"),
]
CPU_IVF = [IvfConfig(100000, 64, 256, ("IVF256,Flat", "IVF256,PQ16"), "c1ivf")]

# --- tiny (the test: seconds) --------------------------------------------------
TINY = [
    _c(3, 4000, 32, 16, "float16", "t", note="batched"),
    _c(1, 20000, 64, 32, "float32", "t"),
    _c(1, 10000, 100, 24, "bfloat16", "t", skewed=True),
]
# PQ8np: without polysemous training, which would take most of the test's time
TINY_IVF = [IvfConfig(20000, 32, 64, ("IVF64,Flat", "IVF64,PQ8np"), "tivf", nq=200)]


def configs_for(mode, tiny):
    """(k-means configurations, IVF configurations) of a mode."""
    if tiny:
        return TINY, TINY_IVF
    if mode == "cpu":
        return CPU, CPU_IVF
    return FULL, FULL_IVF


def select(configs, only):
    """The configurations whose group is one of `only`, or whose name contains
    one of `only` that is not a group name ("ivf" is the group of the 1M IVF
    set, not every set named ivf-...); all when `only` is empty."""
    if not only:
        return list(configs)
    groups = {c.group for c in configs}
    return [c for c in configs if any(s == c.group if s in groups else s in c.name for s in only)]


# --- data -------------------------------------------------------------------------


def _round_bf16_inplace(a32):
    """Rounds float32 values to the nearest bfloat16 (ties to even), in place;
    returns the bfloat16 bit patterns (uint16). The data is finite."""
    u = a32.view(np.uint32)
    u += np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))
    u &= np.uint32(0xFFFF0000)
    return (u >> np.uint32(16)).astype(np.uint16)


def gaussian_mixture(rows, d, n_centres, seed, sigma=0.1, skewed=False, dtype="float32",
                     threads=None):
    """(x32, x16): `rows` x d float32 points of the mixture, rounded to `dtype`;
    x16 holds the same values as float16 (numpy) or bfloat16 bits (uint16),
    None for float32."""
    centres = np.random.default_rng([seed, 0]).uniform(-1, 1, (n_centres, d)).astype(np.float32)
    hot = max(1, n_centres // 100)
    x32 = np.empty((rows, d), np.float32)
    x16 = None if dtype == "float32" else np.empty((rows, d), np.float16 if dtype == "float16" else np.uint16)

    def fill(i):
        r0, r1 = i * CHUNK_ROWS, min(rows, (i + 1) * CHUNK_ROWS)
        g = np.random.default_rng([seed, 1, i])
        n = r1 - r0
        if skewed and n_centres > hot:
            in_hot = g.random(n) < 0.9
            labels = np.where(in_hot, g.integers(0, hot, n), g.integers(hot, n_centres, n))
        else:
            labels = g.integers(0, n_centres, n)
        out = x32[r0:r1]
        g.standard_normal((n, d), dtype=np.float32, out=out)
        out *= np.float32(sigma)
        out += centres[labels]
        if dtype == "float16":
            x16[r0:r1] = out
            out[...] = x16[r0:r1]
        elif dtype == "bfloat16":
            x16[r0:r1] = _round_bf16_inplace(out)

    n_chunks = (rows + CHUNK_ROWS - 1) // CHUNK_ROWS
    with ThreadPoolExecutor(threads or os.cpu_count() or 1) as pool:
        list(pool.map(fill, range(n_chunks)))
    return x32, x16


class Problem:
    """The data of one configuration: x32 (B, N, d) float32 (values already
    rounded to cfg.dtype), x16 (B, N, d) float16 / bfloat16 bits or None, and
    init (B, K, d) float32, the shared initial centroids."""

    def __init__(self, cfg, seed=SEED):
        self.cfg = cfg
        x32, x16 = gaussian_mixture(cfg.B * cfg.N, cfg.d, cfg.K, seed, skewed=cfg.skewed,
                                    dtype=cfg.dtype)
        shape = (cfg.B, cfg.N, cfg.d)
        self.x32 = x32.reshape(shape)
        self.x16 = None if x16 is None else x16.reshape(shape)
        self.init = np.empty((cfg.B, cfg.K, cfg.d), np.float32)
        for b in range(cfg.B):
            idx = np.random.default_rng([seed, 2, b]).choice(cfg.N, cfg.K, replace=False)
            self.init[b] = self.x32[b, idx]
        assert np.any(self.x32 != 0)

    def host(self, dtype):
        """The points in `dtype` on the host as numpy, for uploads: float32 and
        float16 as numpy arrays, bfloat16 as its uint16 bits (callers view them
        as torch.bfloat16). None when the configuration is not stored in a
        16-bit dtype equal to `dtype`."""
        if dtype == "float32":
            return self.x32
        return self.x16 if dtype == self.cfg.dtype else None


class IvfData:
    """xb (N, d), the training set xt (its first n_train rows: the rows are
    i.i.d., so this is a random sample), and nq held-out queries xq from the
    same mixture (4 x nlist centres)."""

    def __init__(self, cfg, seed=SEED):
        x, _ = gaussian_mixture(cfg.N + cfg.nq, cfg.d, 4 * cfg.nlist, seed + 100, sigma=cfg.sigma)
        self.xb = x[: cfg.N]
        self.xq = np.ascontiguousarray(x[cfg.N:])
        self.xt = self.xb[: cfg.n_train]
