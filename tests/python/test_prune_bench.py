"""bench/prune_bench.py on tiny rows: it runs end to end with or without
faiss and scikit-learn, its table comes last, and its JSON keeps the
per-iteration record; pruning reports a skipped fraction in [0, 1] for every
iteration and ends with prune off's labels and centroids."""

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "bench", "prune_bench.py")
NITER = 4


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("prune") / "prune.json"
    proc = subprocess.run(
        [sys.executable, SCRIPT, "--rows", "mixture:3000:16:32", "iid:3000:16:32",
         "--niter", str(NITER),
         "--impls", "flashkmeans,flashkmeans-fused,flashkmeans-prune,sklearn-lloyd",
         "--threads", "1", "--json", str(out)],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(out) as f:
        return json.load(f), proc.stdout


def test_prune_bench_prints_its_table_last_with_a_line_per_row(tiny_run):
    doc, stdout = tiny_run
    lines = stdout.strip().splitlines()
    assert lines[-4].startswith("| dataset | n | k | d | flashkmeans ms/it")
    assert lines[-2].startswith("| mixture | 3000 | 16 | 32 | ")
    assert lines[-1].startswith("| iid | 3000 | 16 | 32 | ")


def test_prune_bench_json_times_every_iteration_of_flashkmeans(tiny_run):
    doc, _ = tiny_run
    assert doc["environment"]["host"]["threads"] == 1
    for row in doc["rows"]:
        off = row["results"]["flashkmeans"]
        assert off["iters"] == NITER and len(off["extras"]["iter_ms"]) == NITER
        assert off["ms_per_iter"] > 0 and off["objective"] > 0


def test_prune_on_skips_work_and_ends_where_prune_off_ends(tiny_run):
    doc, stdout = tiny_run
    assert doc["prune_available"], doc.get("prune_error")
    for row in doc["rows"]:
        on = row["results"]["flashkmeans-prune"]
        skipped = on["extras"]["skipped"]
        assert len(skipped) == NITER and all(0.0 <= s <= 1.0 for s in skipped)
        assert on["labels_differ"] == 0 and on["max_abs_centroid_diff"] < 1e-4


def test_flash_kmeans_is_a_gpu_peer_and_says_so_on_the_cpu(tmp_path):
    out = tmp_path / "fk.json"
    proc = subprocess.run(
        [sys.executable, SCRIPT, "--rows", "mixture:2000:8:16", "--niter", "2",
         "--impls", "flashkmeans,flash-kmeans", "--threads", "1", "--json", str(out)],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(out) as f:
        res = json.load(f)["rows"][0]["results"]
    assert res["flashkmeans"]["available"]
    assert not res["flash-kmeans"]["available"]
    assert "--backend cuda" in res["flash-kmeans"]["reason"]
    assert "flash-kmeans n/a: Flash-KMeans runs on a GPU" in proc.stdout
