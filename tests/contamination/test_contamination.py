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
from freqindex.report.contamination import markdown
from freqindex.suffix.index import Index
from freqindex.suffix.matching import find_batch, longest_match_batch, matching_statistics_batch
from tests.conftest import GSM8K_TEST, WIKITEXT, build, cli
from tests.reference import read_lines_docs, ref_normalize

WORDS = "the a dog cat ran sat on mat big red ball park sun".split()


def _brute(corpus: list[str], item: str, L: int, n_gpt3: int, floor: int | None = None) -> dict:
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
    if coverage is None and floor is not None and n_body >= floor:  # the short-item (whole-item) rule
        coverage = 1.0 if occurs(stored) else 0.0
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
    floor=st.sampled_from([None, 3, 20]),
)
def test_definitions_equal_brute_force(corpus, items, L, n, window, floor):
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
            m, _, _ = field_metrics(idx, item, L, 0, n, it=it, ms=ms, min_short_len=floor)
            ref = _brute(corpus, item, L, n, floor)
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


def test_short_items_are_judged_whole(tmp_path):
    """Short real questions (the last sentence of GSM8K test problems) planted verbatim inside WikiText-2
    paragraphs are found by the whole-item rule; below the floor they stay uncheckable; every verdict equals
    a brute-force whole-word search of the corpus."""
    tests = [json.loads(x)["question"] for x in GSM8K_TEST.read_text().splitlines()]
    by_norm: dict[str, str] = {}
    for q in tests:
        last = q.replace("\n", " ").rsplit(". ", 1)[-1].strip()
        if last.endswith("?"):
            by_norm.setdefault(ref_normalize(last), last)
    short = [q for n, q in by_norm.items() if 20 <= len(n) < 50]
    tiny = [q for n, q in by_norm.items() if 8 <= len(n) < 20]
    assert len(short) >= 80 and len(tiny) >= 5
    rng = random.Random(4)
    rng.shuffle(short)
    planted, unplanted, tiny_planted = short[:30], short[30:80], tiny[:5]
    wiki = [p for p in read_lines_docs(WIKITEXT) if len(p) > 200]
    docs = wiki[:600] + [f"{wiki[600 + i]} {q} {wiki[700 + i]}" for i, q in enumerate(planted + tiny_planted)]
    docs.append(" ".join([planted[0]] * 3))  # one short item in 3 documents: boilerplate at a ceiling of 2
    docs += [f"See also: {planted[0]}", f"{planted[0]} (disambiguation)"]
    (tmp_path / "c.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    build_index(
        BuildConfig(inputs=(str(tmp_path / "c.jsonl"),), output=str(tmp_path / "idx")), run_in_process
    )
    idx = Index.open(tmp_path / "idx")
    items = [
        EvalItem(f"{kind}-{i}", "", {"question": q})
        for kind, qs in (("planted", planted), ("unplanted", unplanted), ("tiny", tiny_planted))
        for i, q in enumerate(qs)
    ]
    recs, summary = check_items(idx, items, ["question"], Policy())
    by_id = {r["id"]: r for r in recs}
    stored = [f" {ref_normalize(d)} " for d in docs]
    for it in items:
        r, body = by_id[it.id], ref_normalize(it.row["question"])
        if len(body) < 20:
            assert (r["bucket"], r["rule"], r["coverage"]) == ("uncheckable", "too_short", None), r
            continue
        whole = any(f" {body} " in d for d in stored)
        assert r["rule"] == "whole_item" and r["fields"]["question"]["rule"] == "whole_item"
        assert r["bucket"] == ("dirty" if whole else "clean"), (it.row["question"], r)
    assert all(by_id[f"planted-{i}"]["bucket"] == "dirty" for i in range(30))
    assert sum(by_id[f"unplanted-{i}"]["bucket"] == "clean" for i in range(50)) >= 45
    assert by_id["planted-3"]["evidence"]["span"] == ref_normalize(planted[3])
    assert summary["rules"] == {"coverage": 0, "whole_item": 80, "too_short": 5}
    assert "judged by a whole-item match: 80; too short to judge (uncheckable): 5" in markdown(summary, recs)
    assert summary["buckets"]["uncheckable"] == 5 and summary["settings"]["min_short_len_resolved"] == {
        "question": 20
    }
    # a whole match in more documents than the boilerplate ceiling is ignored (and counted), never evidence
    recs, summary = check_items(idx, items[:2], ["question"], Policy(boilerplate_ceiling=2))
    assert recs[0]["bucket"] == "clean" and recs[0]["fields"]["question"]["boilerplate_matches"] == 1
    assert recs[1]["bucket"] == "dirty" and summary["boilerplate_matches_ignored"] == 1
    # the floor is a policy setting: raised to min_len, the rule is off and short items are uncheckable
    recs, _ = check_items(idx, items[:1], ["question"], Policy(min_short_len=50))
    assert recs[0]["bucket"] == "uncheckable" and recs[0]["rule"] == "too_short"


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
        "--neighbors",  # the verbatim buckets are the point; the semantic pass is tested in tests/query
        "off",
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
    args += ["--neighbors", "off"]  # the gate and the definitions are the point, not the semantic pass
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
