"""The IVF scenario of bench/compare.py: build a FAISS IVF index with FAISS's
own index.train(xt) or with flashkmeans.train_ivf(index, xt), then add the
database and search held-out queries.

- Same training set for every trainer: the first nlist * 256 database rows
  (the rows are i.i.d.; FAISS's default max_points_per_centroid is 256, so
  no trainer subsamples), the IVF's own ClusteringParameters (niter 10, seed
  1234: flashkmeans reproduces FAISS's seeding, so both start from the same
  centroids).
- Indexes are built by their constructors, as index_factory builds them
  (IndexFlatL2 quantizer; IndexIVFFlat, or IndexIVFPQ with 8-bit codes and
  polysemous training): the faiss-cuda 1.14.1.post4 wheel's index_factory
  throws std::bad_cast on the GPU machine (its std::regex), even alone in a
  fresh `python3 -c "import faiss; faiss.index_factory(16, 'IVF4,Flat')"`.
- Trainers: faiss-cpu (index.train), faiss-gpu (index.train with the IVF's
  clustering_index on the GPU: FAISS's documented way to train a CPU index
  on a GPU), flashkmeans-gpu (train_ivf, backend='cuda'), flashkmeans-cpu
  (train_ivf, backend='cpu'). The PQ encoder (with FAISS's default
  polysemous training for "PQ32", as index_factory builds it) is trained by
  FAISS in every case; add() and search() run on the CPU index.
- Search: nprobe = 16, k = 10; recall@10 = |found top-10 ∩ true top-10| / 10
  averaged over the queries (also recall1@10: the true nearest neighbour is
  among the 10 found); ground truth by exhaustive faiss.IndexFlatL2.
- coarse_obj: the k-means objective of the trained quantizer on the training
  set, by the same evaluator as the k-means scenario; its relative difference
  to faiss-cpu's (or the first trainer that ran) is reported.
"""

import re
import time

import numpy as np

from compare_measure import Optional, Unavailable, _short, cpu_rate

# PQ encoder + polysemous training and per-index fixed costs (seconds): measured
# ~15 s for PQ16 at d = 64 on the 2-core VM; a guess at PQ32, d = 128.
PQ_TRAIN_S = {"cpu": 15.0, "full": 40.0, "tiny": 3.0}
# FAISS's `add` assigns the points to their lists on the CPU, far below the
# k-means rate: measured 158.7 s for 4M x 128 into 4096 lists (and 39 s for
# 1M) on the 16-core GPU machine, ~27 GFLOP/s
# (bench/results/2026-11-21-h200-session4/compare_ivf4m_partial.log at 91e0225).
IVF_ADD_FLOPS = 27e9


class Trainer:
    def __init__(self, name, on_gpu, needs):
        self.name, self.on_gpu, self.needs = name, on_gpu, needs

    def available(self):
        return Optional.first_missing(self.needs)

    def estimate_train_s(self, cfg, threads):
        flops = 2.0 * cfg.n_train * cfg.nlist * cfg.d * 10  # IVF cp.niter = 10
        if self.name == "faiss-cpu":
            return flops / cpu_rate("faiss-cpu", threads)
        if self.name == "flashkmeans-cpu":
            return flops / cpu_rate("flashkmeans-cpu", threads)
        if self.name == "faiss-gpu":
            return 10 * (9.6e-10 * cfg.n_train * cfg.d + 1.42e-14 * cfg.n_train * cfg.nlist * cfg.d) + 1
        return 10 * (flops / 10 / 60e12 + 1e-3) + cfg.n_train * cfg.d * 4 / 10e9 + 1

    def train(self, index, xt):
        if self.name == "faiss-cpu":
            index.train(xt)
        elif self.name == "faiss-gpu":
            faiss = Optional.get("faiss_gpu")
            ivf = faiss.extract_index_ivf(index)
            # clustering_index is not owned by the IVF: keep the GPU index alive
            # as long as the index that points to it (until the next train)
            self._gpu_index = faiss.index_cpu_to_all_gpus(faiss.IndexFlatL2(ivf.d))
            ivf.clustering_index = self._gpu_index
            index.train(xt)
        else:
            fk = Optional.get("flashkmeans")
            fk.train_ivf(index, xt, backend="cuda" if self.on_gpu else "cpu")


def trainers(mode):
    out = [Trainer("faiss-cpu", False, ("faiss",)), Trainer("flashkmeans-cpu", False, ("flashkmeans", "faiss"))]
    if mode == "full":
        out += [Trainer("faiss-gpu", True, ("faiss_gpu",)),
                Trainer("flashkmeans-gpu", True, ("flashkmeans_cuda", "faiss"))]
    return out


def estimate_s(cfg, factory, trainer, threads, pq_key):
    """Seconds for one index built by one trainer (train + add + search +
    the coarse objective)."""
    add = 2.0 * cfg.N * cfg.nlist * cfg.d / min(cpu_rate("faiss-cpu", threads), IVF_ADD_FLOPS)
    return trainer.estimate_train_s(cfg, threads) + add + (PQ_TRAIN_S[pq_key] if "PQ" in factory else 0) + 1.0


def not_planned(cfg, trainer):
    """The skip reason when cfg lists its trainers and this is not one."""
    if cfg.trainers is not None and trainer.name not in cfg.trainers:
        return (f"skipped: {cfg.name} runs {', '.join(cfg.trainers)} only (GPU time budget; "
                "--mode cpu compares the CPU trainers)")
    return None


def ground_truth_estimate_s(cfg, threads):
    return 2.0 * cfg.nq * cfg.N * cfg.d / cpu_rate("faiss-cpu", threads) + 0.5


def recalls(I, gt):
    k = gt.shape[1]
    inter = [len(np.intersect1d(a, b)) for a, b in zip(I[:, :k], gt)]
    return float(np.mean(inter)) / k, float(np.mean([g[0] in a for a, g in zip(I, gt)]))


def make_index(faiss, d, factory):
    """The index index_factory(d, factory) builds, for "IVF<nlist>,Flat" and
    "IVF<nlist>,PQ<M>[np]" (see the module docstring for why not index_factory)."""
    m = re.fullmatch(r"IVF(\d+),(Flat|PQ(\d+)(np)?)", factory)
    if m is None:
        raise ValueError(f"compare_ivf: unsupported index {factory!r} (IVF<n>,Flat or IVF<n>,PQ<m>[np])")
    nlist = int(m.group(1))
    quantizer = faiss.IndexFlatL2(d)  # the IVF's Python wrapper keeps it alive
    if m.group(3) is None:
        return faiss.IndexIVFFlat(quantizer, d, nlist)
    index = faiss.IndexIVFPQ(quantizer, d, nlist, int(m.group(3)), 8)
    index.do_polysemous_training = m.group(4) is None  # as index_factory: "np" turns it off
    return index


def warm_up(trainer, d):
    """A tiny training first, so lazy GPU module loading is not timed."""
    if not trainer.on_gpu:
        return
    faiss = Optional.get("faiss")
    x = np.random.default_rng(0).standard_normal((4096, d), dtype=np.float32)
    trainer.train(make_index(faiss, d, "IVF16,Flat"), x)


def build_one(faiss, factory, trainer, data, cfg):
    """(record fields, coarse centroids) of one index built by one trainer."""
    index = make_index(faiss, cfg.d, factory)
    t0 = time.perf_counter()
    trainer.train(index, data.xt)
    t_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    index.add(data.xb)
    t_add = time.perf_counter() - t0
    ivf = faiss.extract_index_ivf(index)
    ivf.nprobe = cfg.nprobe
    t0 = time.perf_counter()
    _, I = index.search(data.xq, 10)
    t_search = time.perf_counter() - t0
    coarse = ivf.quantizer.reconstruct_n(0, ivf.nlist)
    fields = dict(train_s=t_train, add_s=t_add, build_s=t_train + t_add,
                  search_ms=t_search * 1e3, nprobe=cfg.nprobe, n_train=int(data.xt.shape[0]))
    return fields, coarse, I


def run_ivf(cfg, data, trainer_list, ctx, emit, gt):
    """Builds every factory with every trainer; emit(record) for each."""
    faiss = Optional.get("faiss")
    for trainer in trainer_list:
        reason = trainer.available()
        skips = {f: not_planned(cfg, trainer) or ctx.skip_reason(
            estimate_s(cfg, f, trainer, ctx.threads, ctx.pq_key)) for f in cfg.factories}
        try:
            if reason is None and not all(skips.values()):
                warm_up(trainer, cfg.d)
        except Exception as e:
            reason = f"warm-up failed: {_short(e)}"
        for factory in cfg.factories:
            rec = dict(scenario="ivf", config=cfg.name, index=factory, impl=trainer.name,
                       N=cfg.N, d=cfg.d, nlist=cfg.nlist, nq=cfg.nq)
            skip = skips[factory] or ctx.skip_reason(  # the time limit, again now
                estimate_s(cfg, factory, trainer, ctx.threads, ctx.pq_key))
            if reason is not None:
                rec.update(status="unavailable", reason=f"unavailable: {reason}")
            elif skip:
                rec.update(status="skipped", reason=skip)
            else:
                try:
                    fields, coarse, I = build_one(faiss, factory, trainer, data, cfg)
                    r10, r1 = recalls(I, gt)
                    rec.update(status="ok", recall_at_10=r10, recall1_at_10=r1, **fields)
                    rec["coarse_obj"] = ctx.objective_arrays(data.xt, coarse)
                except Unavailable as e:
                    rec.update(status="unavailable", reason=f"unavailable: {e}")
                except Exception as e:
                    oom = "out of memory" in str(e).lower()
                    rec.update(status="oom" if oom else "error", reason=f"{'oom' if oom else 'error'}: {_short(e)}")
                finally:
                    ctx.free()
            rec["est_s"] = estimate_s(cfg, factory, trainer, ctx.threads, ctx.pq_key)
            emit(rec)


def ground_truth(data, k=10):
    faiss = Optional.get("faiss")
    index = faiss.IndexFlatL2(data.xb.shape[1])
    index.add(data.xb)
    _, gt = index.search(data.xq, k)
    return gt
