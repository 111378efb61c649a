"""The family benchmark: dense, SPLADE, ColBERT and cross-encoder reranking in embedkit's Python
package (which runs at the Rust library's speed) against fastembed 0.9.1 at its best
batch size, on the same model files, threads and inputs, in one run; optionally an
earlier embedkit (`--before-python`, built from another commit) beside the current one.
embedkit runs at both precisions: the exact tier and the int8 tier, whose quality
against the exact vectors is measured first (scripts/bench/precision_quality.py, which
also makes the cached int8 files outside the timed runs).

Every run is a separate process (scripts/bench/run_family.py) under the same memory
limit and timeout as the main suite; the medians of `--reps` runs are compared, and the
results replace the section between the family markers of BENCHMARKS.md."""

import argparse
import datetime
import json
import os
import statistics
import subprocess
from pathlib import Path

from run import machine, run

START, END = "<!-- families:start -->", "<!-- families:end -->"
FAMILIES = {
    # family: (model folder, what the model is)
    "dense": ("dense", "all-MiniLM-L6-v2 fp32, the main suite's model"),
    "splade": ("splade", "splade-tiny (a real trained SPLADE, BERT-tiny size)"),
    "colbert": ("colbert-minilm", "all-MiniLM-L6-v2 encoder + 384→128 projection"),
    "rerank": ("rerank-minilm", "all-MiniLM-L6-v2 encoder + [CLS] logit (ms-marco-MiniLM-L-6 shape)"),
}
# fastembed's settings swept for its best: batch sizes, and two processes. Its default
# (256) is left out: on these paragraphs it was the slowest or ran out of memory under the
# 12 GB limit in every family (BENCHMARKS.md's main suite has it).
FASTEMBED_SETTINGS = [(1, None), (4, None), (16, None), (64, None), (1, 2)]
# `--quick`: the two settings that were fastembed's best in every family so far.
QUICK_SETTINGS = [(1, None), (1, 2)]
# Issue 19's floors for the int8 tier, by quality figure.
FLOORS = {"mean_cos": 0.995, "worst_cos": 0.98, "top10_kept": 0.92, "top20_terms_kept": 0.90,
          "maxsim_top10_kept_mean": 0.95, "spearman_worst": 0.99}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--python", required=True, help="venv with fastembed 0.9.1 and the current embedkit")
    ap.add_argument("--before-python", help="venv with an earlier embedkit")
    ap.add_argument("--before-label", default="before")
    ap.add_argument("--models", required=True, type=Path, help="folder of family_models.py's models")
    ap.add_argument("--splade", required=True, type=Path, help="the splade-tiny folder")
    ap.add_argument("--dense", required=True, type=Path, help="the all-MiniLM-L6-v2 fp32 folder")
    ap.add_argument("--data", required=True, type=Path, help="the bench corpus folder")
    ap.add_argument("--docs", type=int, default=500)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="BENCHMARKS.md")
    ap.add_argument("--results", default="target/bench/families.json")
    ap.add_argument("--queries", type=Path, help="queries for the int8 quality figures (default DATA/queries.txt)")
    ap.add_argument("--quick", action="store_true", help="fastembed at batch 1 and batch 1 x 2 processes only")
    args = ap.parse_args()

    lines = (args.data / "corpus.txt").read_text(encoding="utf-8").splitlines(keepends=True)
    inputs = args.data / "families.txt"
    inputs.write_text("".join(lines[: args.docs]), encoding="utf-8")
    runner = str(Path(__file__).with_name("run_family.py"))
    env = dict(os.environ, OMP_NUM_THREADS="1")

    def folder(family):
        return {"splade": args.splade, "dense": args.dense}.get(family, args.models / FAMILIES[family][0])

    def command(python, package, family, batch=None, parallel=None, precision=None):
        cmd = [python, runner, "--package", package, "--family", family, "--model-dir", str(folder(family)),
               "--input", str(inputs), "--threads", str(args.threads)]
        if precision:
            cmd += ["--precision", precision]
        if batch:
            cmd += ["--batch-size", str(batch)]
        if parallel:
            cmd += ["--parallel", str(parallel)]
        return cmd

    def summary(label, runs, batch=None, parallel=None):
        ok = [r for r in runs if r.ok]
        if not ok:
            print(f"  {label}: {runs[0].why}", flush=True)
            return {"docs_s": None, "rss_mb": None, "failed": runs[0].why, "batch": batch, "parallel": parallel}
        rates = sorted(r.report["docs"] / r.report["embed_s"] for r in ok)
        rss = statistics.median(r.rss for r in ok) / 2**20
        checksum = ok[0].report["checksum"]
        print(f"  {label}: {statistics.median(rates):.1f} docs/s ({rates[0]:.1f}–{rates[-1]:.1f}), {rss:.0f} MB, "
              f"checksum {checksum:.6g}", flush=True)
        return {"docs_s": statistics.median(rates), "min": rates[0], "max": rates[-1], "rss_mb": rss,
                "checksum": checksum, "batch": batch, "parallel": parallel}

    results = {"machine": machine(), "docs": args.docs, "reps": args.reps,
               "date": datetime.date.today().isoformat(),
               "before_label": args.before_label if args.before_python else None, "families": {}}
    settings = QUICK_SETTINGS if args.quick else FASTEMBED_SETTINGS
    results["fastembed_settings"] = settings
    quality_script = str(Path(__file__).with_name("precision_quality.py"))
    for family in FAMILIES:
        print(f"{family}:", flush=True)
        q = subprocess.run([args.python, quality_script, "--family", family, "--model-dir", str(folder(family)),
                            "--input", str(inputs), "--queries", str(args.queries or args.data / "queries.txt"),
                            "--threads", str(args.threads)], env=env, capture_output=True, text=True)
        quality = json.loads(q.stdout.strip().splitlines()[-1]) if q.returncode == 0 else {
            "failed": (q.stderr.strip().splitlines() or ["no output"])[-1][:200]}
        print(f"  int8 quality: {quality}", flush=True)
        contenders = [(f"fastembed batch={b} parallel={p}", command(args.python, "fastembed", family, b, p), b, p)
                      for b, p in settings]
        contenders.append(("embedkit now", command(args.python, "embedkit", family), None, None))
        contenders.append(("embedkit int8", command(args.python, "embedkit", family, precision="int8"), None, None))
        if args.before_python:
            contenders.append((f"embedkit {args.before_label}", command(args.before_python, "embedkit", family),
                               None, None))
        # Interleaved: every rep runs each contender once, starting at another one, so that
        # the machine's drift falls on all of them alike.
        runs = {label: [] for label, *_ in contenders}
        for rep in range(args.reps):
            for k in range(len(contenders)):
                label, cmd, *_ = contenders[(k + rep) % len(contenders)]
                runs[label].append(run(cmd, env))
        done = {label: summary(label, runs[label], b, p) for label, _, b, p in contenders}
        sweep = [done[label] for label, *_ in contenders if label.startswith("fastembed")]
        best = max((x for x in sweep if x["docs_s"]), key=lambda x: x["docs_s"], default=None)
        row = {"fastembed_best": best, "fastembed_sweep": sweep, "after": done["embedkit now"],
               "int8": done["embedkit int8"], "int8_quality": quality}
        if args.before_python:
            row["before"] = done[f"embedkit {args.before_label}"]
        results["families"][family] = row
    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    Path(args.results).write_text(json.dumps(results, indent=1) + "\n")
    write_markdown(results, Path(args.out))


def rate(x):
    if not x or not x.get("docs_s"):
        return "—"
    return f"{x['docs_s']:.1f} ({x['min']:.0f}–{x['max']:.0f})"


def ratio(a, b):
    return "—" if not a or not b or not a.get("docs_s") or not b.get("docs_s") else f"{a['docs_s'] / b['docs_s']:.2f}×"


def rss(x):
    return "—" if not x or not x.get("rss_mb") else f"{x['rss_mb']:.0f} MB"


def quality_text(q):
    if not q:
        return "—"
    if "failed" in q:
        return f"failed: {q['failed']}"
    names = {"mean_cos": "mean cos", "worst_cos": "worst cos", "top10_kept": "top-10 neighbours kept",
             "top20_terms_kept": "top-20 terms kept", "maxsim_top10_kept_mean": "MaxSim top-10 kept",
             "maxsim_top10_kept_worst": "worst query", "spearman_mean": "Spearman mean",
             "spearman_worst": "worst query"}
    parts = []
    for key, value in q.items():
        shown = f"{value * 100:.1f}%" if "kept" in key else f"{value:.4f}"
        floor = FLOORS.get(key)
        if floor is not None:
            floor_shown = f"{floor * 100:.0f}%" if "kept" in key else f"{floor}"
            shown += f" ({'≥' if value >= floor else '✗ <'} {floor_shown})"
        parts.append(f"{names.get(key, key)} {shown}")
    return ", ".join(parts)


def write_markdown(res, out: Path) -> None:
    m = res["machine"]
    before = res["before_label"]
    head = "| family (model) | fastembed best (setting) |"
    rule = "|---|---|"
    if before:
        head += f" embedkit {before} |"
        rule += "---|"
    head += " embedkit now | now / fastembed best |"
    rule += "---|---|"
    if before:
        head += f" now / {before} |"
        rule += "---|"
    head += " peak RSS fastembed / now |"
    rule += "---|"
    rows = []
    for family, r in res["families"].items():
        best, now, old = r["fastembed_best"], r["after"], r.get("before")
        setting = "—" if not best else f"batch {best['batch']}" + (f", parallel {best['parallel']}" if best["parallel"] else "")
        row = f"| {family} ({FAMILIES[family][1]}) | {rate(best)} ({setting}) |"
        if before:
            row += f" {rate(old)} |"
        row += f" {rate(now)} | {ratio(now, best)} |"
        if before:
            row += f" {ratio(now, old)} |"
        row += f" {rss(best)} / {rss(now)} |"
        rows.append(row)
    prec_rows = []
    for family, r in res["families"].items():
        best, exact, int8 = r["fastembed_best"], r["after"], r.get("int8")
        if not int8:
            continue
        prec_rows.append(f"| {family} | {rate(best)} | {rate(exact)} | {rate(int8)} | {ratio(int8, exact)} | "
                         f"{ratio(int8, best)} | {rss(exact)} / {rss(int8)} | {quality_text(r.get('int8_quality'))} |")
    settings = res.get("fastembed_settings", FASTEMBED_SETTINGS)
    swept = ", ".join(f"batch {b}" + (f" x {p} processes" if p else "") for b, p in settings)
    text = "\n".join([
        START,
        f"Measured {res['date']} on {m['cpu']} ({m['cores']} cores), {res['docs']} paragraphs of the bench corpus, "
        f"2 threads, docs/s (higher is better): median of {res['reps']} runs (range in brackets), the "
        f"contenders interleaved, each run its own process. fastembed 0.9.1 at {swept}; "
        f"embedkit at its defaults "
        f"(its Python package, which runs at the Rust library's speed). "
        + (f"\"{before}\" is embedkit built from {before}, measured in the same run." if before else ""),
        "",
        head,
        rule,
        *rows,
        "",
        "#### Precision: the int8 tier beside the exact tier (issue 19)",
        "",
        "Same run, same paragraphs. Quality is int8 against embedkit's exact vectors (which are "
        "fastembed's within float error), on the same paragraphs and the first 10 bench queries "
        "(rerank: 100 paragraphs per query); a figure below issue 19's floor is marked ✗.",
        "",
        "| family | fastembed best | embedkit exact | embedkit int8 | int8 / exact | int8 / fastembed best "
        "| peak RSS exact / int8 | int8 quality (floor) |",
        "|---|---|---|---|---|---|---|---|",
        *prec_rows,
        "",
        "Regenerate: `make bench-families` (`BEFORE=<commit>` adds an earlier embedkit, "
        "`QUICK=1` runs fastembed at its two best settings only).",
        END,
    ])
    current = out.read_text(encoding="utf-8") if out.exists() else ""
    if START in current and END in current:
        a, b = current.index(START), current.index(END) + len(END)
        current = current[:a] + text + current[b:]
    else:
        current = current.rstrip() + "\n\n## Every family against fastembed's best batch size\n\n" + text + "\n"
    out.write_text(current, encoding="utf-8")


if __name__ == "__main__":
    main()
