"""What bench/compare.py writes: compare.json (environment + every record),
compare.md (a table per scenario) and compare.png (speed-ups, log scale).
All three can be rebuilt from compare.json alone (--plot-only DIR)."""

import datetime
import json
import os
import platform
import subprocess
import sys

EXACT_TOL = 1e-4  # relative objective difference above which an exact implementation DISAGREES
# the objective reference of a configuration: the first of these that ran
REFERENCE_ORDER = ("flashkmeans-cpu", "faiss-cpu", "faiss-gpu-clustering", "faiss-gpu-kmeans",
                   "flashkmeans-gpu-fp32", "torch-lloyd")
IVF_REFERENCE_ORDER = ("faiss-cpu", "faiss-gpu", "flashkmeans-cpu", "flashkmeans-gpu")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --- environment -----------------------------------------------------------------------


def _version(name):
    try:
        mod = __import__(name)
        return getattr(mod, "__version__", "?")
    except Exception as e:
        return f"unavailable: {type(e).__name__}"


def _git(*args):
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=20)
        return out.stdout.strip() if out.returncode == 0 else None
    except Exception:
        return None


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def environment(mode, args, gpu, threads):
    """Device, driver, versions, date, commit, host: one dict."""
    env = {
        "mode": mode,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        # the GPU machine's copy of the tree may carry a stale .git: the
        # commit given on the command line wins
        "git_commit": os.environ.get("FLASHKMEANS_COMMIT") or _git("rev-parse", "HEAD"),
        "git_dirty": None,
        "argv": sys.argv[1:],
        "niter": args.niter,
        "rounds": args.rounds,
        "host": {"cpu_count": os.cpu_count(), "threads": threads, "cpu": _cpu_model(),
                 "platform": platform.platform(), "python": platform.python_version()},
        "versions": {n: _version(n) for n in ("flashkmeans", "faiss", "numpy", "torch", "flash_kmeans",
                                                "triton")},
        "device": None,
        "driver": None,
    }
    if not os.environ.get("FLASHKMEANS_COMMIT"):
        status = _git("status", "--porcelain", "--untracked-files=no")
        env["git_dirty"] = None if status is None else bool(status)
    try:
        import flashkmeans

        env["flashkmeans_cuda"] = {"compiled": flashkmeans.cuda_compiled(),
                                   "devices": flashkmeans.cuda_device_count()}
    except Exception:
        pass
    if gpu is not None:
        torch = gpu.torch
        p = torch.cuda.get_device_properties(0)
        env["device"] = f"{p.name} ({p.multi_processor_count} SMs, {p.total_memory >> 20} MiB)"
        env["torch_cuda"] = torch.version.cuda
        if gpu.nvml is not None:
            d = gpu.nvml.nvmlSystemGetDriverVersion()
            env["driver"] = d.decode() if isinstance(d, bytes) else d
        else:
            env["peak_memory_note"] = gpu.nvml_reason
    if env["driver"] is None and gpu is not None:
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=20)
            env["driver"] = out.stdout.strip().splitlines()[0] or None
        except Exception:
            pass
    if env["device"] is None:
        env["device"] = f"CPU: {env['host']['cpu']} ({os.cpu_count()} cores)"
    return env


# --- JSON ----------------------------------------------------------------------------------


def record_key(r):
    return (r.get("scenario", "kmeans"), r["config"], r.get("index"), r["impl"])


def load(path):
    with open(path) as f:
        return json.load(f)


def merge(old, new):
    """new's records replace old's with the same (scenario, config, index,
    impl), except that "skipped: --time-limit" never replaces a result; the
    environments of both runs are kept in `runs`."""
    records = {record_key(r): r for r in old.get("records", [])}
    for r in new["records"]:
        was = records.get(record_key(r))
        if was and was.get("status") == "ok" and "--time-limit" in (r.get("reason") or ""):
            continue  # a run cut short by its time limit keeps the earlier result
        records[record_key(r)] = r
    out = dict(new)
    out["records"] = list(records.values())
    out["runs"] = old.get("runs", [old.get("environment")]) + [new["environment"]]
    return out


def save(doc, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    tmp = os.path.join(out_dir, "compare.json.tmp")
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1, default=float)
    os.replace(tmp, os.path.join(out_dir, "compare.json"))


# --- checks and ratios ------------------------------------------------------------------


def _ok(r):
    return r.get("status") == "ok"


def check_objectives(records):
    """Sets obj_ref, obj_rel_diff and check on each k-means record (signed
    (obj - ref) / ref; 'DISAGREES' for an exact implementation beyond
    EXACT_TOL) and coarse_obj_rel_diff on IVF records."""
    by_cfg = {}
    for r in records:
        by_cfg.setdefault((r.get("scenario", "kmeans"), r["config"], r.get("index")), []).append(r)
    for (scenario, _, _), rs in by_cfg.items():
        field, order = ("objective", REFERENCE_ORDER) if scenario == "kmeans" else ("coarse_obj", IVF_REFERENCE_ORDER)
        ran = {r["impl"]: r for r in rs if _ok(r) and r.get(field) is not None}
        ref_name = next((n for n in order if n in ran), None)
        if ref_name is None and scenario == "kmeans":
            ref_name = next((r["impl"] for r in rs if r.get("exact") and r["impl"] in ran), None)
        for r in rs:
            for k in ("obj_ref", "obj_rel_diff", "check", "coarse_obj_rel_diff"):
                r.pop(k, None)
            if ref_name is None or r["impl"] not in ran:
                continue
            ref = ran[ref_name][field]
            rel = (r[field] - ref) / ref if ref else 0.0
            if scenario == "kmeans":
                r["obj_ref"] = ref_name
                r["obj_rel_diff"] = rel
                if r.get("exact"):
                    r["check"] = "DISAGREES" if abs(rel) > EXACT_TOL else "agrees"
            else:
                r["coarse_obj_ref"] = ref_name
                r["coarse_obj_rel_diff"] = rel


def _ms(rs, impl):
    r = rs.get(impl)
    return r["ms_per_iter"] if r and _ok(r) and r.get("ms_per_iter") else None


def baselines(rs):
    """ms/iter of the baselines of one configuration: FAISS GPU (the faster
    of its two ways), Flash-KMeans (batch_kmeans_Euclid), FAISS CPU."""
    gpu = [m for m in (_ms(rs, "faiss-gpu-kmeans"), _ms(rs, "faiss-gpu-clustering")) if m]
    return {"faiss-gpu": min(gpu) if gpu else None, "flash-kmeans": _ms(rs, "flash-kmeans"),
            "faiss-cpu": _ms(rs, "faiss-cpu")}


def speedups(records, mode):
    """Sets speedup_vs_<baseline> = baseline ms / this ms on every ok record."""
    by_cfg = {}
    for r in records:
        if r.get("scenario", "kmeans") == "kmeans":
            by_cfg.setdefault(r["config"], {})[r["impl"]] = r
    names = ("faiss-cpu",) if mode == "cpu" else ("faiss-gpu", "flash-kmeans")
    for rs in by_cfg.values():
        base = baselines(rs)
        for r in rs.values():
            for n in ("faiss-cpu", "faiss-gpu", "flash-kmeans"):
                r.pop(f"speedup_vs_{n}", None)
            if _ok(r) and r.get("ms_per_iter"):
                for n in names:
                    if base[n]:
                        r[f"speedup_vs_{n}"] = base[n] / r["ms_per_iter"]


def finalize(doc):
    check_objectives(doc["records"])
    speedups(doc["records"], doc["environment"]["mode"])
    bad = [f"{r['config']} {r['impl']} ({r['obj_rel_diff']:+.2e} vs {r['obj_ref']})"
           for r in doc["records"] if r.get("check") == "DISAGREES"]
    doc["disagreements"] = bad
    return doc


# --- Markdown --------------------------------------------------------------------------------

IMPL_ORDER = ("flashkmeans-cpu", "faiss-cpu", "flashkmeans-gpu-fp32", "flashkmeans-gpu-tf32",
              "flashkmeans-gpu-fp16", "flashkmeans-gpu-bf16", "faiss-gpu-kmeans", "faiss-gpu-clustering",
              "flash-kmeans", "flash-kmeans-class", "torch-lloyd")


def _in_order(records):
    """Configurations in the order they first appear, implementations in
    IMPL_ORDER within each (records arrive as runs finish)."""
    first = {}
    for r in records:
        first.setdefault(r["config"], len(first))
    rank = {n: i for i, n in enumerate(IMPL_ORDER)}
    return sorted(records, key=lambda r: (first[r["config"]], rank.get(r["impl"], len(rank)), r["impl"]))



def _f(v, fmt):
    return "" if v is None else format(v, fmt)


def _status(r):
    return r.get("reason") or r.get("status", "?")


def markdown(doc):
    env = doc["environment"]
    mode = env["mode"]
    v = env["versions"]
    lines = [
        f"# flashkmeans head-to-head ({mode} mode)",
        "",
        f"- Device: {env['device']}; driver {env.get('driver') or 'n/a'}; host {env['host']['cpu']}, "
        f"{env['host']['cpu_count']} cores, {env['host']['threads']} threads.",
        f"- Versions: flashkmeans {v.get('flashkmeans')}, faiss {v.get('faiss')}, torch {v.get('torch')}, "
        f"flash_kmeans {v.get('flash_kmeans')}, numpy {v.get('numpy')}.",
        f"- Commit {env.get('git_commit')}{' (dirty)' if env.get('git_dirty') else ''}, {env['date']}; "
        f"{env['niter']} iterations, no early stopping; `python3 bench/compare.py {' '.join(env['argv'])}`"
        + (f" (+{len(doc['runs']) - 1} earlier run(s) merged with --append)" if len(doc.get("runs", [])) > 1 else "")
        + ".",
        "- ms/iter: GPU rows (t(niter+2) - t(2)) / niter on device-resident points, median of 3 after a"
        " warm-up; FAISS and flashkmeans-cpu from their own per-iteration clock (median iteration of"
        f" 3..niter; CPU rows: median of {env.get('rounds', 1)} alternating run(s))."
        " train s: one run from host numpy, upload included. Peak: device memory (nvml) for GPU rows,"
        " RSS for CPU rows, above what was in use before the run.",
        f"- Objective: sum of squared distances to the returned centroids, float64, one evaluator for all;"
        f" rel. diff to the first of {', '.join(REFERENCE_ORDER[:2])}, ...; exact implementations beyond"
        f" {EXACT_TOL:g} are flagged DISAGREES. B > 1 without a batch API: the B problems in turn (sums).",
        "",
    ]
    if doc.get("disagreements"):
        lines += ["**DISAGREES:** " + "; ".join(doc["disagreements"]), ""]
    km = _in_order([r for r in doc["records"] if r.get("scenario", "kmeans") == "kmeans"])
    if km:
        cols = ["vs FAISS CPU"] if mode == "cpu" else ["vs FAISS GPU", "vs Flash-KMeans"]
        keys = ["speedup_vs_faiss-cpu"] if mode == "cpu" else ["speedup_vs_faiss-gpu", "speedup_vs_flash-kmeans"]
        lines += ["## k-means", "",
                  "| config | implementation | ms/iter | train s | peak MiB | objective rel. diff | " +
                  " | ".join(cols) + " |",
                  "|---|---|---|---|---|---|" + "---|" * len(cols)]
        for r in km:
            if _ok(r):
                diff = _f(r.get("obj_rel_diff"), "+.1e")
                if r.get("check") == "DISAGREES":
                    diff += " DISAGREES"
                elif r.get("check") == "agrees":
                    diff += " (exact)"
                if r.get("obj_ref") == r["impl"]:
                    diff = "reference"
                if (r.get("notes") or {}).get("init"):
                    diff += " (own init)"
                peak = None if r.get("peak_mem_bytes") is None else r["peak_mem_bytes"] / 2**20
                row = [r["config"], r["impl"], _f(r["ms_per_iter"], ".3f"), _f(r["train_s"], ".3f"),
                       _f(peak, ".0f"), diff] + [_f(r.get(k), ".3g") + ("x" if r.get(k) else "") for k in keys]
            else:
                row = [r["config"], r["impl"], _status(r), "", "", ""] + [""] * len(keys)
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    ivf = [r for r in doc["records"] if r.get("scenario") == "ivf"]
    if ivf:
        lines += ["## IVF index build (FAISS training vs flashkmeans.train_ivf)", "",
                  "| set | index | trainer | train s | add s | build s | recall@10 | recall1@10 | "
                  "coarse obj rel. diff | train speed-up vs FAISS CPU |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        base = {(r["config"], r["index"]): r["train_s"] for r in ivf if _ok(r) and r["impl"] == "faiss-cpu"}
        for r in ivf:
            if _ok(r):
                b = base.get((r["config"], r["index"]))
                row = [r["config"], r["index"], r["impl"], _f(r["train_s"], ".2f"), _f(r["add_s"], ".2f"),
                       _f(r["build_s"], ".2f"), _f(r["recall_at_10"], ".4f"), _f(r["recall1_at_10"], ".4f"),
                       _f(r.get("coarse_obj_rel_diff"), "+.1e"), _f(b / r["train_s"] if b else None, ".2f")]
            else:
                row = [r["config"], r["index"], r["impl"], _status(r)] + [""] * 6
            lines.append("| " + " | ".join(row) + " |")
        lines += ["", f"nprobe = {ivf[0].get('nprobe', 16)}, k = 10, nq = {ivf[0].get('nq')} held-out queries; "
                  "training set = nlist x 256 points; add and search on the CPU index.", ""]
    return "\n".join(lines)


# --- plot --------------------------------------------------------------------------------------


def plot(doc, path):
    """Log-scale bars: speed-up of flashkmeans (best exact mode, fp16) over
    FAISS GPU and over Flash-KMeans per configuration (cpu mode: flashkmeans
    CPU over FAISS CPU). Returns None, or why the plot was skipped."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker  # noqa: F401
    except Exception as e:
        return f"matplotlib unavailable ({type(e).__name__}: {e})"
    mode = doc["environment"]["mode"]
    by_cfg = {}
    for r in doc["records"]:
        if r.get("scenario", "kmeans") == "kmeans" and _ok(r) and r.get("ms_per_iter"):
            by_cfg.setdefault(r["config"], {})[r["impl"]] = r["ms_per_iter"]
    names = list(by_cfg)
    if mode == "cpu":
        panels = [("FAISS CPU", "faiss-cpu")]
        series = [("flashkmeans CPU (exact)", ("flashkmeans-cpu",))]
    else:
        panels = [("FAISS GPU", "faiss-gpu"), ("Flash-KMeans", "flash-kmeans")]
        series = [("flashkmeans best exact", ("flashkmeans-gpu-fp32", "flashkmeans-cpu")),
                  ("flashkmeans fp16", ("flashkmeans-gpu-fp16",))]
    fig, axes = plt.subplots(len(panels), 1, figsize=(max(8, 0.7 * len(names) + 3), 4.2 * len(panels)),
                             squeeze=False)
    width = 0.8 / len(series)
    for ax, (title, base_name) in zip(axes[:, 0], panels):
        seen = []
        for j, (label, impls) in enumerate(series):
            vals = []
            for n in names:
                rs = by_cfg[n]
                base = baselines({k: {"status": "ok", "ms_per_iter": v} for k, v in rs.items()})[base_name]
                mine = [rs[i] for i in impls if i in rs]
                vals.append(base / min(mine) if base and mine else float("nan"))
            xs = [i + (j - (len(series) - 1) / 2) * width for i in range(len(names))]
            # bars grow from 1x: up for a speed-up, down for a slow-down
            bars = ax.bar(xs, [v - 1 for v in vals], width, bottom=1.0, label=label)
            for b, v in zip(bars, vals):
                if v == v:
                    ax.annotate(f"{v:.2g}x", (b.get_x() + b.get_width() / 2, v), ha="center",
                                va="bottom" if v >= 1 else "top", fontsize=7)
            seen += [v for v in vals if v == v]
        ax.set_yscale("log")
        lo, hi = (min(min(seen), 1.0) / 1.6, max(max(seen), 1.0) * 1.6) if seen else (0.5, 2.0)
        ax.set_ylim(lo, hi)
        fmt = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x")
        ax.yaxis.set_major_formatter(fmt)
        # minor ticks labelled only when the axis spans less than a decade (else they collide)
        ax.yaxis.set_minor_formatter(fmt if hi / lo < 10 else matplotlib.ticker.NullFormatter())
        ax.tick_params(axis="y", which="minor", labelsize=7)
        ax.axhline(1.0, color="black", lw=0.8)
        ax.set_ylabel(f"speed-up over {title} (ms/iter ratio)")
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=35, ha="right", fontsize=8)
        ax.legend(fontsize=8)
        ax.set_title(f"flashkmeans vs {title}: {doc['environment']['device']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return None


def write_outputs(doc, out_dir, with_plot=True):
    """compare.json, compare.md and (matplotlib permitting) compare.png."""
    finalize(doc)
    save(doc, out_dir)
    with open(os.path.join(out_dir, "compare.md"), "w") as f:
        f.write(markdown(doc))
    if not with_plot:
        return None
    why = plot(doc, os.path.join(out_dir, "compare.png"))
    print(f"plot skipped: {why}" if why else f"wrote {os.path.join(out_dir, 'compare.png')}", flush=True)
    return why
