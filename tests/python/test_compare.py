"""bench/compare.py --mode cpu --tiny: the benchmark entry point runs end to
end on a machine without a GPU, flashkmeans CPU and FAISS CPU both run every
tiny configuration and reach the same objective from the same init, and
the JSON and Markdown outputs have what the published table needs."""

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("faiss")

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "bench", "compare.py")
sys.path.insert(0, os.path.join(REPO, "bench"))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    proc = subprocess.run([sys.executable, SCRIPT, "--mode", "cpu", "--tiny", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(out / "compare.json") as f:
        doc = json.load(f)
    return out, doc, proc.stdout


def tiny_config_names():
    from compare_configs import TINY

    return [c.name for c in TINY]


def test_compare_json_has_the_environment_and_a_record_per_run(tiny_run):
    _, doc, _ = tiny_run
    env = doc["environment"]
    for key in ("mode", "date", "git_commit", "device", "driver", "versions", "host", "niter"):
        assert key in env, key
    for lib in ("flashkmeans", "faiss", "numpy", "torch", "flash_kmeans"):
        assert lib in env["versions"], lib
    assert env["mode"] == "cpu" and env["driver"] is None
    for r in doc["records"]:
        for key in ("scenario", "config", "impl", "status"):
            assert key in r, (key, r)


def test_flashkmeans_cpu_and_faiss_cpu_ran_every_tiny_config(tiny_run):
    _, doc, _ = tiny_run
    ran = {(r["config"], r["impl"]): r for r in doc["records"] if r["scenario"] == "kmeans"}
    for name in tiny_config_names():
        for impl in ("flashkmeans-cpu", "faiss-cpu"):
            r = ran[(name, impl)]
            assert r["status"] == "ok", r
            assert r["ms_per_iter"] > 0 and r["train_s"] > 0 and r["objective"] > 0


def test_exact_implementations_agree_on_the_objective(tiny_run):
    _, doc, _ = tiny_run
    assert doc["disagreements"] == []
    for r in doc["records"]:
        if r["scenario"] == "kmeans" and r["impl"] in ("flashkmeans-cpu", "faiss-cpu"):
            assert r["exact"] and r["obj_ref"] == "flashkmeans-cpu"
            assert abs(r["obj_rel_diff"]) < 1e-4 and r["check"] == "agrees", r


def test_ivf_scenario_builds_with_both_trainers(tiny_run):
    _, doc, _ = tiny_run
    ivf = [r for r in doc["records"] if r["scenario"] == "ivf"]
    assert {r["impl"] for r in ivf} == {"faiss-cpu", "flashkmeans-cpu"}
    for r in ivf:
        assert r["status"] == "ok", r
        assert 0 < r["recall_at_10"] <= 1 and r["build_s"] >= r["train_s"] > 0


def test_markdown_has_a_row_per_config_and_progress_lines_were_printed(tiny_run):
    out, _, stdout = tiny_run
    md = (out / "compare.md").read_text()
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    for name in tiny_config_names():
        assert any(line.startswith(f"| {name} |") for line in rows), name
        assert f"] {name} flashkmeans-cpu:" in stdout


def test_plot_only_rebuilds_the_outputs_from_the_json(tiny_run):
    out, _, _ = tiny_run
    os.remove(out / "compare.md")
    proc = subprocess.run([sys.executable, SCRIPT, "--plot-only", str(out)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "compare.md").exists()
    assert ("plot skipped" in proc.stdout) != (out / "compare.png").exists()


@pytest.mark.parametrize("factory", ["IVF64,Flat", "IVF64,PQ8", "IVF64,PQ8np"])
def test_ivf_indexes_are_built_as_index_factory_builds_them(factory):
    faiss = pytest.importorskip("faiss")
    from compare_ivf import make_index

    built = faiss.index_factory(32, factory)  # owns the index downcast_index views
    ours, ref = make_index(faiss, 32, factory), faiss.downcast_index(built)
    assert type(ours) is type(ref)
    assert (ours.d, ours.nlist, ours.metric_type) == (ref.d, ref.nlist, ref.metric_type)
    if "PQ" in factory:
        assert (ours.pq.M, ours.pq.nbits, ours.by_residual) == (ref.pq.M, ref.pq.nbits, ref.by_residual)
        assert ours.do_polysemous_training == ref.do_polysemous_training == ("np" not in factory)
    with pytest.raises(ValueError, match="unsupported index"):
        make_index(faiss, 32, "IVF64,SQ8")


def test_only_selects_a_group_exactly_and_names_by_substring():
    from compare_configs import configs_for, select

    configs, ivf = configs_for("full", False)
    assert [c.name for c in select(ivf, ["ivf"])] == ["ivf-1Mx128"]
    assert [c.name for c in select(ivf, ["ivf4m"])] == ["ivf-4Mx128"]
    assert {c.group for c in select(configs, ["g2"])} == {"g2"}
    assert [c.name for c in select(configs, ["1Mx100000"])] == ["1Mx100000x128-fp16"]
