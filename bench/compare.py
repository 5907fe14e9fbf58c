"""The head-to-head benchmark (issue 5): every k-means implementation on the
same data, from the same initial centroids, for a fixed number of iterations
(no early stopping), in one run; then the IVF index-build scenario.

    python3 bench/compare.py --mode cpu --out /tmp/cmp_cpu        # no GPU: flashkmeans CPU vs FAISS CPU
    python3 bench/compare.py --mode cpu --tiny --out /tmp/t       # seconds (the test)
    python3 bench/compare.py --mode full --dry-run                # the plan and its time estimate
    python3 bench/compare.py --mode full --only g1 --out DIR      # one group of configurations
    python3 bench/compare.py --mode full --only g2 --out DIR --append   # merged into DIR/compare.json
    python3 bench/compare.py --plot-only DIR                      # compare.md + compare.png from the JSON

Implementations (bench/compare_impls.py): flashkmeans-cpu; flashkmeans-gpu-
{fp32 (exact), tf32, fp16, bf16}; faiss-cpu (Clustering + IndexFlatL2);
faiss-gpu-kmeans (faiss.Kmeans(gpu=True)) and faiss-gpu-clustering
(Clustering + GpuIndexFlatL2); flash-kmeans (batch_kmeans_Euclid) and
flash-kmeans-class (FlashKMeans); torch-lloyd (plain PyTorch). Optional
packages are imported behind guards: a missing one gives "unavailable:
<reason>" for the implementations that need it. Nothing is downloaded.

Configurations and data: bench/compare_configs.py (REFERENCE.md's rows plus
d = 96 and 1024, K = 100000, bf16, skewed, fp32; Gaussian mixture, fixed
seed, rounded once to the configuration's dtype so every implementation
clusters the same values). A run whose estimated time exceeds --max-seconds
is recorded as "skipped: est. ..." instead of run; nothing is silently absent.

Per record: ms_per_iter, train_s (from host numpy, upload included),
peak_mem_bytes (GPU: nvml, sampled every 2 ms, minus the level before the
run; CPU: RSS likewise) and the objective, computed for every
implementation by one evaluator (float64, chunked; on the GPU in full mode,
numpy in cpu mode). Exact implementations (flashkmeans fp32 CPU/GPU, FAISS
CPU/GPU, torch-lloyd on fp32 data) must agree with the reference (the
first of flashkmeans-cpu, faiss-cpu, ... that ran) within 1e-4 relative;
otherwise they are flagged DISAGREES. See bench/compare_impls.py for the
timing methods and bench/compare_ivf.py for the IVF scenario.
"""

import argparse
import gc
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from compare_configs import CPU_SKIP, DTYPE_SHORT, IvfData, Problem, configs_for, select  # noqa: E402
from compare_impls import implementations  # noqa: E402
from compare_measure import (Gpu, Optional, PeakSampler, Unavailable, _short, host_threads,  # noqa: E402
                             is_oom, objective_estimate_s, objective_numpy, rss_bytes)
import compare_ivf  # noqa: E402
import compare_report as report  # noqa: E402

CLUSTER_SEED = 1234  # FAISS's default ClusteringParameters.seed, for every implementation


def _list(values):
    return [s for v in values or [] for s in v.split(",") if s]


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=("cpu", "full"), default="cpu",
                    help="cpu: flashkmeans CPU vs FAISS CPU, scaled-down sizes; full: every implementation")
    ap.add_argument("--tiny", action="store_true", help="tiny configurations (seconds; the test)")
    ap.add_argument("--only", action="append", metavar="SUBSTR",
                    help="configurations whose name contains SUBSTR, or group SUBSTR (repeatable, comma lists)")
    ap.add_argument("--impl", action="append", metavar="NAME",
                    help="implementations whose name contains NAME (repeatable, comma lists)")
    ap.add_argument("--niter", type=int, default=None, help="Lloyd iterations (default 10; tiny 5)")
    ap.add_argument("--out", default=None, help="output folder (default bench/results/compare-<mode>)")
    ap.add_argument("--append", action="store_true", help="merge into an existing OUT/compare.json")
    ap.add_argument("--ivf", action=argparse.BooleanOptionalAction, default=True,
                    help="run the IVF index-build scenario too (default: yes)")
    ap.add_argument("--rounds", type=int, default=None,
                    help="runs of each CPU implementation, alternating; the median is kept (default: cpu 3, else 1)")
    ap.add_argument("--max-seconds", type=float, default=None,
                    help="skip a run whose estimated time exceeds this (default: full 90, cpu 120, tiny 30)")
    ap.add_argument("--time-limit", type=float, default=None,
                    help="start no run that would end after this many seconds of the whole script")
    ap.add_argument("--est-threads", type=int, default=None,
                    help="host threads assumed by the estimates (default: this host's); for --dry-run elsewhere")
    ap.add_argument("--dry-run", action="store_true", help="print the plan with estimates; run nothing")
    ap.add_argument("--plot-only", metavar="DIR", help="rebuild DIR/compare.md and DIR/compare.png from DIR/compare.json")
    args = ap.parse_args(argv)
    args.only = _list(args.only)
    args.impl = _list(args.impl)
    if args.niter is None:
        args.niter = 5 if args.tiny else 10
    if args.niter < 4:
        ap.error("--niter must be >= 4 (FAISS's per-iteration time leaves out the first two iterations)")
    if args.rounds is None:
        args.rounds = 3 if args.mode == "cpu" and not args.tiny else 1
    if args.max_seconds is None:
        args.max_seconds = 30.0 if args.tiny else (90.0 if args.mode == "full" else 120.0)
    if args.out is None:
        args.out = os.path.join(report.REPO, "bench", "results", f"compare-{args.mode}{'-tiny' if args.tiny else ''}")
    return args


class Ctx:
    """What the implementations share in one run: the GPU (or None), seeds,
    memory samplers, the objective evaluator, the skip rules."""

    def __init__(self, args, gpu, threads):
        self.gpu, self.threads, self.args = gpu, threads, args
        self.seed = CLUSTER_SEED
        self.t_start = time.perf_counter()
        self.pq_key = "tiny" if args.tiny else args.mode

    def sampler(self, on_gpu):
        return self.gpu.sampler() if on_gpu and self.gpu else PeakSampler(rss_bytes)

    def objective(self, prob, centroids):
        if self.gpu:
            return self.gpu.objective(self.gpu.points(prob, "float32"), centroids)
        return objective_numpy(prob.x32, centroids)

    def objective_arrays(self, x, centroids):
        """The same evaluator on one (N, d) set and (K, d) centroids."""
        if self.gpu:
            xd = self.gpu.torch.from_numpy(x).to(self.gpu.dev)[None]
            try:
                return self.gpu.objective(xd, centroids[None])
            finally:
                del xd
                self.gpu.free()
        return objective_numpy(x[None], centroids[None])

    def free(self):
        gc.collect()
        if self.gpu:
            self.gpu.free()

    def skip_reason(self, est):
        if est > self.args.max_seconds:
            return f"skipped: est. {est:.0f} s > {self.args.max_seconds:.0f} s"
        if self.args.time_limit is not None:
            elapsed = time.perf_counter() - self.t_start
            if elapsed + est > self.args.time_limit:
                return f"skipped: --time-limit {self.args.time_limit:.0f} s (at {elapsed:.0f} s, est. {est:.0f} s)"
        return None


def plan(cfg, impls, args, threads):
    """[(impl, reason or None, estimated seconds)] for one configuration."""
    out = []
    for impl in impls:
        est = impl.estimate_s(cfg, args.niter, threads)
        reason = impl.available()
        reason = f"unavailable: {reason}" if reason else None
        if reason is None and not impl.on_gpu and not cfg.cpu_impls:
            reason = CPU_SKIP
        if reason is None and est > args.max_seconds:
            reason = f"skipped: est. {est:.0f} s > {args.max_seconds:.0f} s"
        out.append((impl, reason, est))
    return out


def data_estimate_s(cfg, threads):
    return cfg.B * cfg.N * cfg.d / (30e6 * threads) + 0.1


def dry_run(args, configs, ivf_configs, impls, threads):
    """The configurations x implementations with their estimated feasibility,
    and the estimated seconds per --only group."""
    on_gpu_eval = args.mode == "full"
    groups = {}
    print(f"# plan: --mode {args.mode}{' --tiny' if args.tiny else ''}, niter {args.niter}, rounds {args.rounds}, "
          f"--max-seconds {args.max_seconds:.0f}, estimates for {threads} host threads")
    for i, cfg in enumerate(configs, 1):
        rows = plan(cfg, impls, args, threads)
        run = [(impl, est * (1 if impl.on_gpu else args.rounds)) for impl, reason, est in rows
               if reason is None or reason.startswith("unavailable")]
        total = data_estimate_s(cfg, threads) + sum(
            est + objective_estimate_s(cfg, on_gpu_eval or impl.on_gpu, threads) for impl, est in run)
        groups[cfg.group] = groups.get(cfg.group, 0) + total
        print(f"[{i}/{len(configs)}] {cfg.name} (group {cfg.group}; {cfg.note}): est. {total:.0f} s")
        for impl, reason, est in rows:
            print(f"    {impl.name:22s} est. {est:8.1f} s  {reason or 'run'}")
    if args.ivf:
        for cfg in ivf_configs:
            total = compare_ivf.ground_truth_estimate_s(cfg, threads) + 1
            print(f"[ivf] {cfg.name} (group {cfg.group}) {', '.join(cfg.factories)}, train {cfg.n_train}, "
                  f"nq {cfg.nq}, nprobe {cfg.nprobe}")
            for t in compare_ivf.trainers(args.mode):
                if args.impl and not any(s in t.name for s in args.impl):
                    continue
                for f in cfg.factories:
                    est = compare_ivf.estimate_s(cfg, f, t, threads, "tiny" if args.tiny else args.mode)
                    reason = t.available()
                    reason = f"unavailable: {reason}" if reason else (
                        compare_ivf.not_planned(cfg, t)
                        or (f"skipped: est. {est:.0f} s > {args.max_seconds:.0f} s" if est > args.max_seconds else "run"))
                    if reason == "run" or reason.startswith("unavailable"):
                        total += est
                    print(f"    {t.name:16s} {f:14s} est. {est:8.1f} s  {reason}")
            groups[cfg.group] = groups.get(cfg.group, 0) + total
            print(f"    est. {total:.0f} s")
    fixed = 20 if args.mode == "full" else 3
    print(f"\n# estimated seconds per --only group (+ ~{fixed} s of imports and warm-up per call)")
    for g, s in groups.items():
        print(f"  {g:6s} {s:7.0f} s  ({s / 60:.1f} min)")
    print(f"  total  {sum(groups.values()):7.0f} s  ({sum(groups.values()) / 60:.1f} min)")


def progress(tag, cfg_name, rec):
    if rec["status"] == "ok":
        extra = ""
        if rec.get("obj_rel_diff") is not None:
            extra = f", obj {rec['obj_rel_diff']:+.1e} vs {rec['obj_ref']}"
            if rec.get("check"):
                extra += f" ({rec['check']})"
        peak = "" if rec.get("peak_mem_bytes") is None else f", peak {rec['peak_mem_bytes'] / 2**20:.0f} MiB"
        msg = f"{rec['ms_per_iter']:.3f} ms/iter, train {rec['train_s']:.3f} s{peak}{extra}"
    else:
        msg = rec.get("reason") or rec["status"]
    print(f"{tag} {cfg_name} {rec['impl']}: {msg}", flush=True)


def _run_once(impl, prob, args, ctx):
    """(Result, None) or (None, record fields of the failure)."""
    try:
        return impl.run(prob, args.niter, ctx), None
    except Unavailable as e:
        return None, dict(status="unavailable", reason=f"unavailable: {e}")
    except Exception as e:
        if is_oom(e):
            return None, dict(status="oom", reason="out of memory", error=_short(e))
        return None, dict(status="error", reason=f"error: {_short(e)}")
    finally:
        ctx.free()


def run_kmeans(cfg, i, n_cfg, impls, args, ctx, records, save):
    """Every implementation on one configuration. The CPU implementations run
    args.rounds times, alternating, so that a slow spell of a shared machine
    falls on all of them (the median round is kept); the GPU ones once."""
    mine, todo = [], []
    prob = None

    def emit(rec):
        mine.append(rec)
        records.append(rec)
        report.check_objectives(mine)
        progress(f"[{i}/{n_cfg}]", cfg.name, rec)
        save()

    for impl, reason, est in plan(cfg, impls, args, ctx.threads):
        rounds = 1 if impl.on_gpu else args.rounds
        rec = dict(scenario="kmeans", config=cfg.name, group=cfg.group, B=cfg.B, N=cfg.N, K=cfg.K, d=cfg.d,
                   dtype=cfg.dtype, skewed=cfg.skewed, impl=impl.name, on_gpu=impl.on_gpu,
                   exact=impl.exact(cfg), niter=args.niter, est_s=round(est * rounds, 2))
        reason = reason or ctx.skip_reason(est * rounds)
        if reason is not None:
            rec.update(status=reason.split(":")[0], reason=reason)
            emit(rec)
        else:
            todo.append((impl, rec, rounds, []))
    if not todo:
        return
    t0 = time.perf_counter()
    prob = Problem(cfg)
    print(f"[{i}/{n_cfg}] {cfg.name}: data {time.perf_counter() - t0:.1f} s (B={cfg.B}, N={cfg.N}, K={cfg.K}, "
          f"d={cfg.d}, {DTYPE_SHORT[cfg.dtype]}{', skewed' if cfg.skewed else ''})", flush=True)
    schedule = [(r, item) for r in range(max(n for _, _, n, _ in todo)) for item in todo if r < item[2]]
    failed = set()
    for r, (impl, rec, rounds, results) in schedule:
        if impl.name in failed:
            continue
        t0 = time.perf_counter()
        res, failure = _run_once(impl, prob, args, ctx)
        rec["wall_s"] = round(rec.get("wall_s", 0) + time.perf_counter() - t0, 3)
        if failure:
            failed.add(impl.name)
            rec.update(failure)
            emit(rec)
            continue
        results.append(res)
        if len(results) < rounds:
            continue
        # the median round by ms/iter (its train time, peak and centroids with it)
        results.sort(key=lambda x: x.ms_per_iter)
        best = results[(len(results) - 1) // 2]
        notes = dict(best.notes)
        if rounds > 1:
            notes["rounds_ms_per_iter"] = [x.ms_per_iter for x in results]
        rec.update(status="ok", ms_per_iter=best.ms_per_iter, train_s=best.train_s,
                   peak_mem_bytes=max((x.peak_mem_bytes for x in results if x.peak_mem_bytes is not None),
                                      default=None), notes=notes)
        rec["objective"] = ctx.objective(prob, best.centroids)
        results.clear()
        emit(rec)
    if ctx.gpu:
        ctx.gpu.drop()
    del prob
    gc.collect()


def run_ivf(cfg, i, n_cfg, args, ctx, records, save):
    trainers = [t for t in compare_ivf.trainers(args.mode) if not args.impl or any(s in t.name for s in args.impl)]
    if not trainers:
        return
    try:
        t0 = time.perf_counter()
        data = IvfData(cfg)
        gt = compare_ivf.ground_truth(data)
        print(f"[ivf {i}/{n_cfg}] {cfg.name}: data + ground truth {time.perf_counter() - t0:.1f} s", flush=True)
    except Unavailable as e:
        for t in trainers:
            for f in cfg.factories:
                records.append(dict(scenario="ivf", config=cfg.name, index=f, impl=t.name,
                                    status="unavailable", reason=f"unavailable: {e}"))
        save()
        return
    mine = []

    def emit(rec):
        mine.append(rec)
        records.append(rec)
        report.check_objectives(mine)
        if rec["status"] == "ok":
            d = rec.get("coarse_obj_rel_diff")
            msg = (f"train {rec['train_s']:.2f} s, build {rec['build_s']:.2f} s, recall@10 {rec['recall_at_10']:.4f}"
                   + ("" if d is None else f", coarse obj {d:+.1e}"))
        else:
            msg = rec.get("reason") or rec["status"]
        print(f"[ivf {i}/{n_cfg}] {cfg.name} {rec['index']} {rec['impl']}: {msg}", flush=True)
        save()

    compare_ivf.run_ivf(cfg, data, trainers, ctx, emit, gt)


def main(argv=None):
    args = parse_args(argv)
    if args.plot_only:
        doc = report.load(os.path.join(args.plot_only, "compare.json"))
        report.write_outputs(doc, args.plot_only)
        print(open(os.path.join(args.plot_only, "compare.md")).read())
        return 0
    configs, ivf_configs = configs_for(args.mode, args.tiny)
    configs = select(configs, args.only)
    ivf_configs = select(ivf_configs, args.only) if args.ivf else []
    impls = [m for m in implementations(args.mode) if not args.impl or any(s in m.name for s in args.impl)]
    threads = args.est_threads or host_threads()
    if args.dry_run:
        dry_run(args, configs, ivf_configs, impls, threads)
        return 0
    if not configs and not ivf_configs:
        print(f"no configuration matches --only {args.only}", file=sys.stderr)
        return 2

    gpu = None
    if args.mode == "full":
        try:
            gpu = Gpu()
        except Unavailable as e:
            print(f"full mode without a usable GPU ({e}): GPU implementations will be recorded unavailable",
                  flush=True)
    ctx = Ctx(args, gpu, threads)
    env = report.environment(args.mode, args, gpu, host_threads())
    old = None
    path = os.path.join(args.out, "compare.json")
    if args.append and os.path.exists(path):
        old = report.load(path)
        if old["environment"].get("mode") != args.mode:
            print(f"--append: {path} is from --mode {old['environment'].get('mode')}, this run is "
                  f"--mode {args.mode}", file=sys.stderr)
            return 2
    records = []

    def doc():
        new = {"environment": env, "runs": [env], "records": records}
        return report.merge(old, new) if old else new

    def save():
        report.save(report.finalize(doc()), args.out)

    print(f"# compare.py --mode {args.mode}{' --tiny' if args.tiny else ''}: {len(configs)} k-means "
          f"configuration(s), {len(ivf_configs)} IVF set(s), {len(impls)} implementation(s), niter {args.niter}, "
          f"device: {env['device']}", flush=True)
    if gpu is not None and Optional.reason("faiss_gpu") is None:
        _faiss_gpu_warm_up()
    for i, cfg in enumerate(configs, 1):
        run_kmeans(cfg, i, len(configs), impls, args, ctx, records, save)
    for i, cfg in enumerate(ivf_configs, 1):
        run_ivf(cfg, i, len(ivf_configs), args, ctx, records, save)

    final = doc()
    report.write_outputs(final, args.out)
    print(f"\nwrote {args.out}/compare.json and compare.md ({time.perf_counter() - ctx.t_start:.0f} s)\n")
    print(report.markdown(final))
    return 0


def _faiss_gpu_warm_up():
    """One tiny GPU clustering, so FAISS's lazy GPU initialisation (module
    load, cuBLAS) is not in the first configuration's numbers."""
    import numpy as np

    faiss = Optional.get("faiss")
    x = np.random.default_rng(0).standard_normal((2048, 16), dtype=np.float32)
    km = faiss.Kmeans(16, 8, gpu=True, niter=2)
    km.train(x)


if __name__ == "__main__":
    sys.exit(main())
