"""Contamination: every definition against a brute force; planted GSM8K questions in WikiText-2; outputs, gate."""

from __future__ import annotations

import json
import random
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from freqindex.build import build_index, run_in_process
from freqindex.config import BuildConfig
from freqindex.contamination.check import Policy, check_items
from freqindex.contamination.metrics import field_metrics, item_bytes, item_text
from freqindex.evals import EvalItem
from freqindex.suffix.index import Index
from freqindex.suffix.matching import find_batch, longest_match_batch, matching_statistics_batch
from tests.conftest import GSM8K_TEST, WIKITEXT, build, cli
from tests.reference import read_lines_docs, ref_normalize

WORDS = "the a dog cat ran sat on mat big red ball park sun".split()


def _brute(corpus: list[str], item: str, L: int, n_gpt3: int) -> dict:
    """Every metric straight from substring search over the stored documents."""
    docs = [f" {ref_normalize(d)} " for d in corpus]
    body = ref_normalize(item)
    stored = f" {body} "

    def occurs(s: str) -> bool:
        return any(s in d for d in docs)

    ms = []
    for i in range(len(stored)):
        k = 0
        while i + k < len(stored) and occurs(stored[i : i + k + 1]):
            k += 1
        ms.append(k)
    cover = [False] * len(stored)
    for s in range(len(stored) - L + 1):
        if occurs(stored[s : s + L]):
            for j in range(s, s + L):
                cover[j] = True
    n_body = len(stored) - 2
    coverage = sum(cover[1:-1]) / n_body if n_body >= L else None
    words = body.split(" ") if body else []

    def grams(n):
        return [occurs(" " + " ".join(words[k : k + n]) + " ") for k in range(len(words) - n + 1)]

    g = grams(n_gpt3)
    p8 = grams(8)
    starts = [0] + [i + 1 for i, ch in enumerate(body) if ch == " "]
    subs = [occurs(body[s : s + 50]) for s in starts if s + 50 <= len(body)]
    return {
        "longest": max(ms) if ms else 0,
        "coverage": coverage,
        "gpt3": (any(g) if g else None),
        "palm": ((sum(p8) / len(p8) >= 0.7) if p8 else None),
        "ig_mini": ((sum(subs) / len(subs) >= 0.8) if subs else None),
    }


sentence = st.lists(st.sampled_from(WORDS), min_size=1, max_size=30).map(" ".join)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    corpus=st.lists(sentence, min_size=1, max_size=8),
    items=st.lists(sentence, min_size=1, max_size=4),
    L=st.sampled_from([5, 12, 50]),
    n=st.sampled_from([8, 10]),
    window=st.sampled_from([8, 16, 64]),
)
def test_definitions_equal_brute_force(corpus, items, L, n, window):
    tmp = Path(tempfile.mkdtemp(prefix="fqx-cont-"))
    try:
        # plant pieces of the corpus into some items so that hits happen
        items = items + [corpus[0] + " " + items[0]]
        (tmp / "c.txt").write_text("\n".join(corpus) + "\n")
        build_index(
            BuildConfig(inputs=(str(tmp / "c.txt"),), output=str(tmp / "idx"), text_per_line=True),
            run_in_process,
        )
        idx = Index.open(tmp / "idx")
        texts = [item_text(idx, item) for item in items]
        batch = matching_statistics_batch(idx, [item_bytes(idx, t) for t in texts], window=window)
        longest = longest_match_batch(idx, [item_bytes(idx, t) for t in texts], stride=3, window=window)
        for item, it, ms, lm in zip(items, texts, batch, longest):
            m, _, engine_ms = field_metrics(idx, item, L, 0, n)
            assert ms.tolist() == engine_ms.tolist(), item  # the batched path == the engine's creativity
            # the sampled longest-match search == max / first argmax of the full matching statistics
            assert lm == ((int(ms.max()), int(ms.argmax())) if len(ms) else (0, 0)), item
            if it.ids:  # batched suffix-array ranges == the engine's find (present and absent spans)
                for span in (it.ids, it.ids[: max(1, len(it.ids) // 2)], it.ids[-3:]):
                    got = find_batch(idx, [bytes(span)])[0]
                    assert [tuple(r) for r in got] == [
                        tuple(r) for r in idx.engine.find(input_ids=span)["segment_by_shard"]
                    ]
            m, _, _ = field_metrics(idx, item, L, 0, n, it=it, ms=ms)
            ref = _brute(corpus, item, L, n)
            assert m.longest_match_tokens == ref["longest"], item
            if ref["coverage"] is None:
                assert m.coverage is None
            else:
                assert m.coverage == pytest.approx(ref["coverage"]), item
            for name in ("gpt3", "palm", "ig_mini"):
                assert m.definitions[name]["flag"] == ref[name], (name, item)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_skip_budget_and_boilerplate(tmp_path):
    corpus = ["alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma"]
    corpus += [f"common template phrase for every document number {i}" for i in range(30)]
    (tmp_path / "c.txt").write_text("\n".join(corpus) + "\n")
    build_index(
        BuildConfig(inputs=(str(tmp_path / "c.txt"),), output=str(tmp_path / "idx"), text_per_line=True),
        run_in_process,
    )
    idx = Index.open(tmp_path / "idx")
    item = "alpha beta gamma delta epsilon zeta XXX theta iota kappa lambda mu nu xi omicron pi rho sigma"
    strict, _, _ = field_metrics(idx, item, 20, 0, 8)
    bridged, _, _ = field_metrics(idx, item, 20, 5, 8)
    assert strict.coverage < 1.0 and bridged.coverage == 1.0
    it = EvalItem("t", "", {"q": "common template phrase for every document number 7"})
    recs, summary = check_items(idx, [it], ["q"], Policy(min_len=20, boilerplate_ceiling=5))
    # only the tail that names document 7 is specific: the template part no longer counts
    assert (
        recs[0]["coverage"] <= 0.5
        and recs[0]["bucket"] != "dirty"
        and summary["boilerplate_matches_ignored"] > 0
    )
    recs, _ = check_items(idx, [it], ["q"], Policy(min_len=20, boilerplate_ceiling=1000))
    assert recs[0]["bucket"] == "dirty" and recs[0]["coverage"] == 1.0


def _edit(q: str) -> str:
    return "  ".join(q.upper().replace(",", " ,").replace(".", " . ").split())


def _wrap(q: str) -> str:
    words = q.split()
    return "\n".join(" ".join(words[i : i + 7]) for i in range(0, len(words), 7))


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    root = tmp_path_factory.mktemp("cont")
    rng = random.Random(1)
    tests = [json.loads(x) for x in GSM8K_TEST.read_text().splitlines()]
    rng.shuffle(tests)
    wiki = [p for p in read_lines_docs(WIKITEXT) if len(p) > 200]
    plants = {
        "verbatim": tests[:25],
        "edited": tests[25:50],
        "wrapped": tests[50:75],
        "inside": tests[75:100],
    }
    docs = [{"text": w} for w in wiki[:1400]]
    for kind, rows in plants.items():
        for i, r in enumerate(rows):
            q = r["question"]
            text = {
                "verbatim": q,
                "edited": _edit(q),
                "wrapped": _wrap(q),
                "inside": wiki[1400 + i] + " " + q + " " + wiki[1440 + i],
            }[kind]
            docs.append({"text": text, "id": f"{kind}-{i}"})
    rng.shuffle(docs)
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    build([root / "corpus.jsonl"], root / "idx")
    evals = [
        {"id": f"{k}-{i}", "question": r["question"], "answer": r["answer"]}
        for k, rows in plants.items()
        for i, r in enumerate(rows)
    ]
    evals += [
        {"id": f"unplanted-{i}", "question": r["question"], "answer": r["answer"]}
        for i, r in enumerate(tests[100:400])
    ]
    (root / "eval.jsonl").write_text("".join(json.dumps(e) + "\n" for e in evals))
    return root


@pytest.mark.spark
def test_planted_questions_are_dirty_and_others_clean(planted):
    root = planted
    out = root / "out"
    p = cli(
        "contamination",
        root / "idx",
        "--eval",
        root / "eval.jsonl",
        "--fields",
        "question",
        "--out",
        out,
        "--json",
        check=0,
    )
    summary = json.loads(p.stdout)
    recs = {r["id"]: r for r in map(json.loads, (out / "items.jsonl").read_text().splitlines())}
    planted_ids = [i for i in recs if not i.startswith("unplanted")]
    recall = sum(recs[i]["bucket"] == "dirty" for i in planted_ids) / len(planted_ids)
    assert recall >= 0.95, {i: recs[i]["bucket"] for i in planted_ids if recs[i]["bucket"] != "dirty"}
    unplanted = [r for i, r in recs.items() if i.startswith("unplanted")]
    fpr = sum(r["bucket"] not in ("clean", "uncheckable") for r in unplanted) / len(unplanted)
    assert fpr <= 0.01
    assert summary["buckets"]["dirty"] >= 95 and summary["n_items"] == 400
    # evidence: a person can see why
    r = recs["inside-0"]
    assert r["evidence"]["ext_id"] == "inside-0" and "«" in r["evidence"]["snippet"]
    html = (out / "report.html").read_text()
    assert "<mark>" in html and "coverage histogram" in html
    clean_rows = [json.loads(x) for x in (out / "clean.jsonl").read_text().splitlines()]
    assert {c["id"] for c in clean_rows} == {i for i, r in recs.items() if r["bucket"] != "dirty"}
    assert "dirty" in (out / "report.md").read_text()


@pytest.mark.spark
def test_gate_results_impact_and_sql(planted):
    root = planted
    args = ["contamination", root / "idx", "--eval", root / "eval.jsonl", "--fields", "question"]
    p = cli(*args, "--fail-above", "0.1")
    assert p.returncode == 1 and "gate failed" in p.stderr and "Traceback" not in p.stderr
    assert cli(*args, "--fail-above", "0.5").returncode == 0
    assert cli(*args, "--fail-above", "2").returncode == 2
    assert cli("contamination", root / "idx", "--eval", root / "missing.jsonl").returncode == 2
    # definitions selected by name
    p = cli(*args, "--definitions", "palm,gpt3", "--out", root / "out-defs", "--json", check=0)
    assert set(json.loads(p.stdout)["definitions"]) == {"gpt3", "palm"}
    rec = json.loads((root / "out-defs" / "items.jsonl").read_text().splitlines()[0])
    assert set(rec["definitions"]) == {"gpt3", "palm"}
    p = cli(*args, "--definitions", "gpt3,nope", check=2)
    assert "unknown definition(s) nope" in p.stderr
    # impact, long layout: model A is right exactly on the planted items
    res = root / "results.jsonl"
    rows = [json.loads(x) for x in (root / "eval.jsonl").read_text().splitlines()]
    res.write_text(
        "".join(
            json.dumps({"id": r["id"], "model": "A", "correct": not r["id"].startswith("unplanted")}) + "\n"
            for r in rows
        )
    )
    p = cli(*args, "--results", res, "--out", root / "out2", "--json", check=0)
    imp = json.loads(p.stdout)["impact"]["models"]["A"]
    recs = [json.loads(x) for x in (root / "out2" / "items.jsonl").read_text().splitlines()]
    clean = [r for r in recs if r["bucket"] != "dirty"]
    expect_clean = sum(not r["id"].startswith("unplanted") for r in clean) / len(clean)
    assert imp["accuracy_all"] == pytest.approx(100 / 400) and imp["accuracy_clean"] == pytest.approx(
        expect_clean
    )
    assert imp["gain"] > 0 and imp["gain_ci"][0] <= imp["gain"] <= imp["gain_ci"][1]
    out = cli(
        "sql",
        root / "idx",
        "SELECT bucket, count(*) AS n FROM contamination GROUP BY bucket ORDER BY bucket",
        "--format",
        "json",
        check=0,
    ).stdout.splitlines()
    assert sum(json.loads(x)["n"] for x in out) == 400
