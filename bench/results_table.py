"""Markdown table of one recorded GPU run (bench/gpu_run.sh logs in a results
folder): flashkmeans end to end and per kernel against Flash-KMeans.

    python3 bench/results_table.py bench/results/<run>
"""
import json
import re
import sys


def jsonl(path):
    return [json.loads(line) for line in open(path) if line.startswith("{")]


def points(config):
    b, rest = (32, config[3:]) if config.startswith("32x") else (1, config)
    n, k, d = re.match(r"(\d+M|\d+)x(\d+)x(\d+)", rest).groups()
    n = int(n[:-1]) << 20 if n.endswith("M") else int(n)
    return b * n, int(k), int(d)


def main(folder):
    ours = {r["config"]: r["ms_per_iter"] for r in jsonl(f"{folder}/bench_lloyd.log")}
    ref = {r["config"]: r for r in jsonl(f"{folder}/flash_kmeans_ref.log")}
    kern = {}
    for line in open(f"{folder}/bench_kernels.log"):
        cells = [c.strip() for c in line.split("|")[1:-1]]
        if len(cells) > 10 and re.match(r"\d", cells[1]):
            kern[cells[0]] = cells
    print("| config | flashkmeans ms/iter | Flash-KMeans ms/iter | ratio | our assign ms (TFLOP/s) "
          "| ref assign ms (TFLOP/s) | our update ms balanced / skewed | ref update ms |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in ref.items():
        mine = name if name in ours else name + "-exact"
        if mine not in ours:
            continue
        n, k, d = points(name)
        kr = kern.get(mine.replace("-exact", ""))
        ka = f"{kr[5]} ({kr[6]})" if kr else "(end to end only)"
        ku = f"{kr[8]} / {kr[10]}" if kr else "-"
        label = name + (" (ours exact, theirs TF32)" if mine.endswith("-exact") else "")
        print(f"| {label} | {ours[mine]:.3f} | {r['ms_per_iter']:.3f} | {ours[mine] / r['ms_per_iter']:.2f} "
              f"| {ka} | {r['assign_ms']:.3f} ({2 * n * k * d / r['assign_ms'] / 1e9:.0f}) | {ku} "
              f"| {r['update_ms']:.3f} |")
    if "1Mx1024x128-fp32-tf32" in ours and "1Mx1024x128-fp32" in ref:
        kr = kern.get("1Mx1024x128-fp32-tf32")
        r = ref["1Mx1024x128-fp32"]
        print(f"| 1Mx1024x128-fp32 (ours opt-in TF32) | {ours['1Mx1024x128-fp32-tf32']:.3f} "
              f"| {r['ms_per_iter']:.3f} | {ours['1Mx1024x128-fp32-tf32'] / r['ms_per_iter']:.2f} "
              f"| {kr[5]} ({kr[6]}) | {r['assign_ms']:.3f} | {kr[8]} / {kr[10]} | {r['update_ms']:.3f} |")


if __name__ == "__main__":
    main(sys.argv[1])
