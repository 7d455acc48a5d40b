"""∞-gram benchmark: per-token surprisal of the 1,319 GSM8K test questions against the >=100 MB benchmark index
(freqindex's batched suffix-array search vs calling the infini-gram engine's ``infgram_prob`` once per token,
timed on a random sample of tokens and extrapolated), and ``freqindex frontier`` on 10,000 candidates (GSM8K
train and test answers, and test answers with their words shuffled), cold (the corpus profile is built) and
warm (cached). Writes OUT/lm.json.

    python benchmarks/bench_lm.py --index /work/bench-shared/count-index --out bench-out
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, REPO, run_measured  # noqa: E402


def _timed(fn):
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, round(time.perf_counter() - t, 3), round(time.process_time() - c, 3)


def surprisal_bench(index_dir: Path, engine_sample: int, seed: int) -> dict:
    import numpy as np

    from freqindex.contamination.metrics import item_text
    from freqindex.evals import load_eval
    from freqindex.query.distance import surprisals
    from freqindex.suffix import lm
    from freqindex.suffix.index import Index

    items = load_eval(str(DATA / "evals" / "gsm8k" / "test.jsonl"), fields=["question"])
    idx = Index.open(index_dir)
    _, views_s, views_cpu = _timed(lambda: lm.shard_views(idx))

    def ours():
        seqs = [np.asarray(item_text(idx, it.text).ids, dtype=np.int64) for it in items]
        stats = lm.infgram_positions(idx, seqs)
        return seqs, stats, [surprisals(s.prompt_cnt, s.cont_cnt) for s in stats]

    (seqs, stats, bits), ours_s, ours_cpu = _timed(ours)
    n_tok = int(sum(len(s) for s in seqs))
    rng = random.Random(seed)
    sample = [(k, t) for k in range(len(seqs)) for t in range(len(seqs[k]))]
    sample = rng.sample(sample, min(engine_sample, len(sample)))
    eng = idx.engine
    t = time.perf_counter()
    agree = 0
    for k, pos in sample:
        r = eng.infgram_prob(prompt_ids=seqs[k][:pos].tolist(), cont_id=int(seqs[k][pos]))
        s = stats[k]
        agree += (r["suffix_len"], r["prompt_cnt"], r["cont_cnt"]) == (
            s.suffix_len[pos],
            s.prompt_cnt[pos],
            s.cont_cnt[pos],
        )
    per_call = (time.perf_counter() - t) / len(sample)
    engine_total = per_call * n_tok
    return {
        "items": len(items),
        "tokens": n_tok,
        "index_tokens": idx.manifest["counts"]["tokens"],
        "shards": len(idx.shards),
        "first_use_sample_keys_seconds": views_s,
        "first_use_sample_keys_cpu_seconds": views_cpu,
        "freqindex_seconds": ours_s,
        "freqindex_cpu_seconds": ours_cpu,
        "freqindex_us_per_token": round(1e6 * ours_s / n_tok, 2),
        "mean_surprisal_bits": round(float(np.mean([b[1:].mean() for b in bits if b.size > 1])), 4),
        "engine_sampled_tokens": len(sample),
        "engine_ms_per_token": round(1e3 * per_call, 3),
        "engine_extrapolated_seconds": round(engine_total, 1),
        "speedup_vs_engine": round(engine_total / ours_s, 1),
        "speedup_incl_first_use": round(engine_total / (ours_s + views_s), 1),
        "engine_agreement_on_sample": f"{agree}/{len(sample)}",
    }


def frontier_bench(index_dir: Path, out: Path, n: int, seed: int) -> dict:
    rng = random.Random(seed)
    gsm = DATA / "evals" / "gsm8k"
    train = [
        json.loads(x)["answer"] for x in (gsm / "train.jsonl").read_text(encoding="utf-8").splitlines() if x
    ]
    test = [
        json.loads(x)["answer"] for x in (gsm / "test.jsonl").read_text(encoding="utf-8").splitlines() if x
    ]
    cands = [("train", t) for t in train] + [("test", t) for t in test]
    while len(cands) < n:
        w = rng.choice(test).split()
        rng.shuffle(w)
        cands.append(("shuffled", " ".join(w)))
    cands = cands[:n]
    path = out / "frontier-candidates.jsonl"
    path.write_text(
        "".join(
            json.dumps({"id": f"c{k}", "text": t, "kind": kind}) + "\n" for k, (kind, t) in enumerate(cands)
        )
    )
    cache = out / "profile-cache"
    shutil.rmtree(cache, ignore_errors=True)
    res = {"candidates": len(cands), "candidate_bytes": sum(len(t.encode()) for _, t in cands)}
    cmd = [sys.executable, "-m", "freqindex.cli", "frontier", str(index_dir), "--candidates", str(path)]
    for run in ("cold", "warm"):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        m = run_measured(
            cmd + ["--out", str(out / f"frontier-{run}"), "--profile-cache", str(cache)], cwd=str(REPO)
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        m["cpu_seconds"] = round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2)
        summ = json.loads((out / f"frontier-{run}" / "summary.json").read_text())
        res[run] = {
            "seconds": m["seconds"],
            "cpu_seconds": m["cpu_seconds"],
            "peak_rss_mb": m["peak_rss_mb"],
            "kept": summ["kept"],
            "reasons": summ["reasons"],
        }
    kept = {json.loads(x)["id"] for x in (out / "frontier-warm" / "kept.jsonl").read_text().splitlines()}
    by_kind: dict[str, list[int]] = {}
    for k, (kind, _) in enumerate(cands):
        by_kind.setdefault(kind, [0, 0])
        by_kind[kind][0] += f"c{k}" in kept
        by_kind[kind][1] += 1
    res["kept_share_by_kind"] = {k: round(a / b, 4) for k, (a, b) in by_kind.items()}
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index", default=None, help="the benchmark index (default: OUT/count-index)")
    ap.add_argument("--out", default="bench-out")
    ap.add_argument("--engine-sample", type=int, default=2000, help="tokens timed through the engine")
    ap.add_argument("--candidates", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-frontier", action="store_true")
    a = ap.parse_args()
    out = Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    index_dir = Path(a.index).resolve() if a.index else out / "count-index"
    if not (index_dir / "manifest.json").exists():
        raise SystemExit(f"no index at {index_dir}: pass --index, or run benchmarks/bench_count.py first")
    res = {
        "machine": {"cpus": os.cpu_count(), "load_average_at_start": [round(x, 1) for x in os.getloadavg()]},
        "surprisal": surprisal_bench(index_dir, a.engine_sample, a.seed),
    }
    if not a.skip_frontier:
        res["frontier"] = frontier_bench(index_dir, out, a.candidates, a.seed)
    (out / "lm.json").write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
