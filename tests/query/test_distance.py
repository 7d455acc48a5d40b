"""Per-item distance measures against a brute force on a small real corpus; the novel-n-gram share against a
direct set computation; leave-one-out against an index built without the document; the synthetic check with
known truth (held-back documents of the corpus vs the same documents with their words shuffled) and the
learning frontier through the CLI."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest

from freqindex.build import build_index, run_in_process
from freqindex.config import BuildConfig
from freqindex.contamination.metrics import item_bytes, item_text
from freqindex.query.distance import item_distances
from freqindex.suffix import lm
from freqindex.suffix.index import Index
from freqindex.suffix.matching import longest_match_batch
from tests.conftest import GSM8K_TEST, GSM8K_TRAIN, WIKITEXT, cli
from tests.reference import BruteCorpus, read_jsonl_docs, read_lines_docs, stored


def _build(root, texts, shards=2):
    root.mkdir(parents=True, exist_ok=True)
    (root / "c.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    build_index(
        BuildConfig(inputs=(str(root / "c.jsonl"),), output=str(root / "idx"), shards=shards), run_in_process
    )
    return Index.open(root / "idx")


def _brute_distance(brute: BruteCorpus, corpus_ngrams: dict[int, set], x: bytes) -> dict:
    """Every measure straight from substring counts over the stored documents (one token = one byte)."""
    total = len(brute.joined)

    def occurs(q: bytes) -> bool:  # a pattern without the separator never spans two documents
        return q in brute.joined

    sur, zero, ctx = [], [], []
    for t in range(1, len(x)):
        k = 0  # occurrence is monotone: grow the suffix while it still occurs
        while k < t and occurs(x[t - k - 1 : t]):
            k += 1
        prompt = total if k == 0 else brute.count(x[t - k : t])
        cont = brute.count(x[t - k : t + 1])
        sur.append(math.log2(prompt / cont) if cont else math.log2(prompt + 1))
        zero.append(cont == 0)
        ctx.append(k)
    ms = []
    for i in range(len(x)):
        k = 0
        while i + k < len(x) and occurs(x[i : i + k + 1]):
            k += 1
        ms.append(k)
    novel = {}
    for n in (5, 8, 13):
        grams = {x[i : i + n] for i in range(len(x) - n + 1)}
        novel[n] = (sum(g not in corpus_ngrams[n] for g in grams) / len(grams)) if grams else None
    return {
        "mean_surprisal": sum(sur) / len(sur),
        "max_surprisal": max(sur),
        "zero_prob_share": sum(zero) / len(zero),
        "mean_context": sum(ctx) / len(ctx),
        "novel": novel,
        "longest": max(ms),
    }


def test_distance_equals_brute_force(tmp_path):
    rng = random.Random(5)
    corpus = read_lines_docs(WIKITEXT)[:120] + read_jsonl_docs(GSM8K_TRAIN, "question")[:150]
    idx = _build(tmp_path, corpus, shards=3)
    docs = [stored(t, "simple").encode() for t in corpus]
    brute = BruteCorpus(docs)
    corpus_ngrams = {n: {d[i : i + n] for d in docs for i in range(len(d) - n + 1)} for n in (5, 8, 13)}
    held = read_jsonl_docs(GSM8K_TEST, "question")[:12] + read_lines_docs(WIKITEXT)[400:405]
    shuffled = [" ".join(rng.sample(t.split(), len(t.split()))) for t in held[:4]]
    items = held + shuffled + [corpus[3], corpus[130], "ok"]
    got = item_distances(idx, [(str(k), t) for k, t in enumerate(items)])
    texts = [item_text(idx, t) for t in items]
    longest = longest_match_batch(idx, [item_bytes(idx, it) for it in texts])
    for t, it, d, lmb in zip(items, texts, got, longest):
        x = bytes(it.ids)
        assert x == stored(t, "simple").encode()
        ref = _brute_distance(brute, corpus_ngrams, x)
        assert d.n_tokens == len(x) and d.scored_tokens == len(x) - 1
        for k in ("mean_surprisal", "max_surprisal", "zero_prob_share", "mean_context"):
            assert getattr(d, k) == pytest.approx(ref[k], rel=1e-12), (k, t)
        for n in (5, 8, 13):
            want = ref["novel"][n]
            assert getattr(d, f"novel_{n}") == (None if want is None else pytest.approx(want, rel=1e-12)), (
                n,
                t,
            )
        # the longest match is the contamination check's
        assert d.longest_match_tokens == ref["longest"] == lmb[0], t
        assert d.longest_match_chars == it.tok_to_char[lmb[1] + lmb[0]] - it.tok_to_char[lmb[1]]
    # a corpus document is all in the corpus; a shuffled text is farther than its original
    assert got[len(held) + len(shuffled)].novel_13 == 0.0
    for k in range(4):
        assert got[len(held) + k].mean_surprisal > got[k].mean_surprisal


def test_leave_one_out_equals_an_index_without_the_document(tmp_path):
    corpus = read_lines_docs(WIKITEXT)[:80] + read_jsonl_docs(GSM8K_TRAIN, "question")[:80]
    corpus += corpus[:10]  # duplicated documents: the copies stay when one is left out
    full = _build(tmp_path / "full", corpus, shards=3)
    for k in (2, 100):
        sh, ix = full.doc_location(k)
        a, b = sh.doc_bounds(ix, 1)
        seq = np.frombuffer(bytes(sh.ds[a:b]), dtype=np.uint8).astype(np.int64)
        loo = lm.infgram_positions(full, [seq], exclude=[lm.Exclusion(sh.shard, a)])[0]
        without = _build(tmp_path / f"wo{k}", corpus[:k] + corpus[k + 1 :])
        ref = lm.infgram_positions(without, [seq])[0]
        for name in ("suffix_len", "prompt_cnt", "cont_cnt", "match_len"):
            assert getattr(loo, name).tolist() == getattr(ref, name).tolist(), (k, name)
        # and the engine on the index without it agrees
        for t in range(0, len(seq), 37):
            r = without.engine.infgram_prob(prompt_ids=seq[:t].tolist(), cont_id=int(seq[t]))
            assert (r["suffix_len"], r["prompt_cnt"], r["cont_cnt"]) == (
                loo.suffix_len[t],
                loo.prompt_cnt[t],
                loo.cont_cnt[t],
            )


def _auc(far: list[float], near: list[float]) -> float:
    """P(a far item scores higher than a near one), ties counting half (the Mann-Whitney AUC)."""
    f, n = np.asarray(far)[:, None], np.asarray(near)[None, :]
    return float((f > n).mean() + 0.5 * (f == n).mean())


def test_held_back_vs_shuffled_separated_and_frontier_keeps_the_corpus(tmp_path):
    rng = random.Random(3)
    rows = [json.loads(x) for x in GSM8K_TRAIN.read_text(encoding="utf-8").splitlines() if x.strip()]
    texts = [r["question"] + "\n" + r["answer"] for r in rows]
    rng.shuffle(texts)
    held, corpus = texts[:150], texts[150:]
    idx = _build(tmp_path, corpus, shards=2)
    shuffled = [" ".join(rng.sample(t.split(), len(t.split()))) for t in held]
    near = item_distances(idx, [(f"h{k}", t) for k, t in enumerate(held)])
    far = item_distances(idx, [(f"s{k}", t) for k, t in enumerate(shuffled)])
    for measure, sign in (("mean_surprisal", 1), ("novel_13", 1), ("mean_context", -1)):
        auc = _auc([sign * getattr(d, measure) for d in far], [sign * getattr(d, measure) for d in near])
        assert auc >= 0.95, (measure, auc)
    # scoring split over forked worker processes gives the same records
    from freqindex.query.frontier import ProfileSettings, build_profile, make_band, score_candidates

    prof = build_profile(idx, ProfileSettings(size=40))
    band = make_band(prof)
    cands = [(f"h{k}", t) for k, t in enumerate(held[:30])]
    assert score_candidates(idx, cands, band, prof, workers=3) == score_candidates(
        idx, cands, band, prof, workers=1
    )
    # the frontier: held-back documents of the corpus's own source are kept, shuffled ones rejected
    cand = tmp_path / "cand.jsonl"
    cand.write_text(
        "".join(json.dumps({"id": f"h{k}", "text": t}) + "\n" for k, t in enumerate(held))
        + "".join(json.dumps({"id": f"s{k}", "text": t}) + "\n" for k, t in enumerate(shuffled))
    )
    cli(
        "frontier",
        tmp_path / "idx",
        "--candidates",
        cand,
        "--out",
        tmp_path / "fr",
        "--profile-size",
        "300",
        check=0,
    )
    kept = {json.loads(x)["id"] for x in (tmp_path / "fr" / "kept.jsonl").read_text().splitlines()}
    rejected = [json.loads(x) for x in (tmp_path / "fr" / "rejected.jsonl").read_text().splitlines()]
    assert sum(f"h{k}" in kept for k in range(150)) >= 0.95 * 150
    assert sum(f"s{k}" not in kept for k in range(150)) >= 0.8 * 150
    assert {r["frontier"]["reason"] for r in rejected} <= {"too_far", "too_close", "too_short"}
    summary = json.loads((tmp_path / "fr" / "summary.json").read_text())
    assert summary["kept"] + summary["rejected"] == 300 and summary["band"]["lo_pct"] == 5.0
    assert (tmp_path / "fr" / "report.html").read_text().count("<img") == 1
    # the profile is cached among the index's derived outputs and reused
    cached = list((tmp_path / "idx" / "evals" / "_profile").glob("profile-*.parquet"))
    assert len(cached) == 1 and summary["profile"]["built_now"] is True
    cli(
        "frontier",
        tmp_path / "idx",
        "--candidates",
        cand,
        "--out",
        tmp_path / "fr2",
        "--profile-size",
        "300",
        check=0,
    )
    assert json.loads((tmp_path / "fr2" / "summary.json").read_text())["profile"]["built_now"] is False
    assert (tmp_path / "fr2" / "kept.jsonl").read_text() == (tmp_path / "fr" / "kept.jsonl").read_text()
