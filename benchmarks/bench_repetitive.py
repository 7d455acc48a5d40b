"""Repetitive text: the suffix-array stage on exact copies and periodic runs vs distinct text of the same size.

    python benchmarks/bench_repetitive.py --out bench-out [--repeats 3] [--timeout 600] [--only copies8 ...]

Inputs (generated into OUT/repetitive/, from ../shared/data, one JSONL file each, indexed with
``--normalize none`` so every input byte is one token):

- ``copies8``: the paragraphs of WikiText-2 valid, eight times over (8.9 MB);
- ``distinct8``: every distinct text of WikiText-2 valid+test, Flickr8k and GSM8K train, once each, cut to
  the size of ``copies8``;
- ``periodic20``: one 20 MB document of one sentence repeated;
- ``words20``: 20 MB of words drawn at random from WikiText-2's vocabulary (distinct text of the size of
  ``periodic20``: no long repeats).

For each input: the whole ``freqindex build`` through the CLI (Spark ``local[*]``, default shard count:
one shard at these sizes); then the suffix array of that shard (``tokenized.0``) built again by each
builder in its own process (``libdivsufsort``, the default; ``infini-gram``, main's builder: its indexer
binary, make-part + merge + concat, 2 CPUs), alternating the builders, ``--repeats`` times: wall seconds,
CPU seconds and peak RSS of the process tree, and whether the table equals the build's byte for byte. A
run past ``--timeout`` is killed and reported as such (and that builder is not run again on that input).
Writes OUT/repetitive.json.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, REPO, run_measured, source_texts  # noqa: E402

BUILDERS = ("libdivsufsort", "infini-gram")
SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank. "

_SA_CHILD = """
import sys, time
from freqindex.suffix.sa_build import build_suffix_array
ds, sa, work, builder = sys.argv[1:5]
t = time.monotonic()
used = build_suffix_array(ds, sa, work, 1, 2, builder=builder)
print(used, round(time.monotonic() - t, 3))
"""


def write_jsonl(path: Path, docs: list[str]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for i, d in enumerate(docs):
            f.write(json.dumps({"id": f"d{i}", "text": d}) + "\n")


def make_inputs(root: Path) -> dict[str, dict]:
    root.mkdir(parents=True, exist_ok=True)
    valid = [
        ln
        for ln in (DATA / "corpora" / "wikitext2" / "valid.txt").read_text("utf-8").split("\n")
        if ln.strip()
    ]
    copies = valid * 8
    size = sum(len(d.encode()) for d in copies)
    distinct, total = [], 0
    for t in dict.fromkeys(source_texts()):  # each distinct text once, in a fixed order
        if total >= size:
            break
        distinct.append(t)
        total += len(t.encode())
    wiki = "".join((DATA / "corpora" / "wikitext2" / n).read_text("utf-8") for n in ("valid.txt", "test.txt"))
    vocab = sorted(set(re.findall(r"\w+", wiki)))
    rng = random.Random(0)
    periodic = SENTENCE * (20_000_000 // len(SENTENCE))
    words, n = [], 0
    while n < len(periodic):
        w = rng.choice(vocab)
        words.append(w)
        n += len(w.encode()) + 1
    inputs = {
        "copies8": copies,
        "distinct8": distinct,
        "periodic20": [periodic],
        "words20": [" ".join(words)[: len(periodic)]],
    }
    out = {}
    for name, docs in inputs.items():
        p = root / f"{name}.jsonl"
        if not p.exists():
            write_jsonl(p, docs)
        out[name] = {"path": str(p), "documents": len(docs), "text_bytes": sum(len(d.encode()) for d in docs)}
    return out


def build_cmd(py: str, src: str, dest: Path) -> list[str]:
    return [py, "-m", "freqindex.cli", "build", src, "-o", str(dest), "--normalize", "none", "--json"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench-out")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=600, help="seconds before a suffix-array run is killed")
    ap.add_argument("--only", nargs="*", default=None, help="inputs to run (default: all)")
    args = ap.parse_args()
    out = Path(args.out).resolve()
    work = out / "repetitive"
    inputs = make_inputs(work / "inputs")
    names = args.only or list(inputs)
    py = sys.executable
    env = {"PYTHONPATH": str(REPO)}
    results: dict = {
        "inputs": inputs,
        "repeats": args.repeats,
        "timeout_s": args.timeout,
        "sa": {},
        "build": {},
    }
    for name in names:
        idx = work / f"idx-{name}"
        shutil.rmtree(idx, ignore_errors=True)
        r = run_measured(build_cmd(py, inputs[name]["path"], idx), env=env, cwd=str(REPO))
        s = json.loads(r.pop("stdout"))
        r.update(timings=s["timings"], shards=s["shards"], tokens=s["tokens"])
        results["build"][name] = r
        print(name, "build", r, flush=True)
        if s["shards"] != 1:
            raise SystemExit(f"{name}: expected one shard, the build made {s['shards']}")
        ds = idx / "sa" / "tokenized.0"
        runs: dict[str, list] = {b: [] for b in BUILDERS}
        for rep in range(args.repeats):
            order = BUILDERS if rep % 2 == 0 else BUILDERS[::-1]
            for b in order:
                if runs[b] and runs[b][-1].get("timed_out"):
                    continue  # one timeout is the answer; do not spend another
                sa = work / f"{name}.{b}.table"
                m = run_measured(
                    [py, "-c", _SA_CHILD, str(ds), str(sa), str(work / "sa-work"), b],
                    env=env,
                    cwd=str(REPO),
                    timeout=args.timeout,
                )
                m.pop("stdout")
                if not m.get("timed_out"):
                    m["same_as_index_table"] = sa.read_bytes() == (idx / "sa" / "table.0").read_bytes()
                sa.unlink(missing_ok=True)
                runs[b].append(m)
                print(name, b, m, flush=True)
        shutil.rmtree(work / "sa-work", ignore_errors=True)
        results["sa"][name] = {
            "tokens": ds.stat().st_size,
            "runs": runs,
            "median_seconds": {
                b: (
                    None if any(x.get("timed_out") for x in v) else statistics.median(x["seconds"] for x in v)
                )
                for b, v in runs.items()
            },
            "median_cpu_seconds": {
                b: (
                    None
                    if any(x.get("timed_out") for x in v)
                    else statistics.median(x["cpu_seconds"] for x in v)
                )
                for b, v in runs.items()
            },
            "max_peak_rss_mb": {b: max(x["peak_rss_mb"] for x in v) for b, v in runs.items()},
        }
        shutil.rmtree(idx, ignore_errors=True)
    ratios = {}
    for measure in ("median_seconds", "median_cpu_seconds"):
        med = {n: v[measure] for n, v in results["sa"].items()}
        for rep_name, base in (("copies8", "distinct8"), ("periodic20", "words20")):
            for b in BUILDERS:
                x, y = med.get(rep_name, {}).get(b), med.get(base, {}).get(b)
                key = f"{b}, {measure}: {rep_name} / {base}"
                ratios[key] = round(x / y, 2) if x and y else (f"> {args.timeout} s" if y else None)
    results["sa_ratio_repetitive_over_distinct"] = ratios
    (out / "repetitive.json").write_text(json.dumps(results, indent=2))
    summary = {
        n: {k: v[k] for k in ("median_seconds", "median_cpu_seconds")} for n, v in results["sa"].items()
    }
    print(json.dumps({"sa": summary, "ratios": ratios}, indent=2))


if __name__ == "__main__":
    main()
