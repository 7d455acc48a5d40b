"""`prob`, `ntd`, `priming`, `distance` and `frontier` through the real CLI: their answers equal the library's
(and the engine's), and bad input (an empty context, a keyword that normalizes to nothing, a token id outside
the vocabulary, a file that is not UTF-8) gets one-line errors and exit 2, with the rest of a batch answered
and every bad line reported by its number."""

from __future__ import annotations

import json

import pytest

from freqindex.build import build_index, run_in_process
from freqindex.config import BuildConfig
from freqindex.suffix.index import Index
from tests.conftest import GSM8K_TEST, GSM8K_TRAIN, cli
from tests.reference import read_jsonl_docs


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("lm-cli")
    (root / "c.jsonl").write_text(
        "".join(json.dumps({"text": t}) + "\n" for t in read_jsonl_docs(GSM8K_TRAIN, "question")[:800])
    )
    build_index(BuildConfig(inputs=(str(root / "c.jsonl"),), output=str(root / "idx")), run_in_process)
    return root / "idx"


def _one_line_error(proc) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len([ln for ln in proc.stderr.splitlines() if ln.strip()]) == 1, proc.stderr


def test_prob_and_ntd_answers_equal_the_engine(idx_dir):
    idx = Index.open(idx_dir)
    p = cli(
        "prob", idx_dir, "--context", "How many eggs does", "--next", " she", "-n", "3", "--json", check=0
    )
    rec = json.loads(p.stdout)
    ctx = list(b"how many eggs does")
    for j, t in enumerate(rec["infgram"]["tokens"]):
        r = idx.engine.infgram_prob(prompt_ids=ctx + list(b" she")[:j], cont_id=t["token_id"])
        assert (t["suffix_len"], t["prompt_cnt"], t["cont_cnt"]) == (
            r["suffix_len"],
            r["prompt_cnt"],
            r["cont_cnt"],
        )
    for j, t in enumerate(rec["ngram"]["tokens"]):
        full = ctx + list(b" she")[:j]
        r = idx.engine.prob(prompt_ids=full[-2:], cont_id=t["token_id"])
        assert (t["prompt_cnt"], t["cont_cnt"]) == (r["prompt_cnt"], r["cont_cnt"])
    p = cli("ntd", idx_dir, "--context", "how many", "--top", "3", "--json", check=0)
    rec = json.loads(p.stdout)
    r = idx.engine.ntd(prompt_ids=list(b"how many"), max_support=10**12)
    assert rec["prompt_cnt"] == r["prompt_cnt"]
    best = sorted(r["result_by_token_id"].items(), key=lambda kv: (-kv[1]["cont_cnt"], kv[0]))[:3]
    assert [(x["token_id"], x["cont_cnt"]) for x in rec["next"]] == [(k, v["cont_cnt"]) for k, v in best]


def test_bad_input_one_line_errors_and_batches_keep_good_lines(idx_dir, tmp_path):
    _one_line_error(cli("prob", idx_dir, "--context", "", "--next", "a"))
    _one_line_error(cli("prob", idx_dir, "--context", "?!", "--next", ""))
    _one_line_error(cli("ntd", idx_dir, "--context", ""))
    # a batch: good lines answered in order, bad lines reported by line number, exit 2
    kw = tmp_path / "kw.jsonl"
    kw.write_bytes(
        b'{"context": "how many eggs", "keyword": "did"}\n'
        b'{"context": "she bought", "keyword": "?!"}\n'
        b"\n"
        b'{"context_ids": [104, 111], "keyword_ids": [300]}\n'
        b'{"context": "caf\xff", "keyword": "x"}\n'
        b"not json\n"
        b'{"context": "", "keyword": "eggs"}\n'
        b'{"context": "how many", "keyword": "eggs"}\n'
    )
    p = cli("priming", idx_dir, "--file", kw, "--threshold", "0.001")
    assert p.returncode == 2
    out = [json.loads(x) for x in p.stdout.splitlines()]
    assert [o["line"] for o in out] == [1, 2, 4, 5, 6, 7, 8]
    assert [("error" in o) for o in out] == [False, True, True, True, True, True, False]
    assert "normalizes to nothing" in out[1]["error"] and "outside the vocabulary" in out[2]["error"]
    assert (
        "not UTF-8" in out[3]["error"]
        and "bad JSON" in out[4]["error"]
        and "empty context" in out[5]["error"]
    )
    for o in (out[0], out[6]):
        assert o["flagged"] == (o["prob"] < 0.001) and len(o["tokens"]) == o["keyword_tokens"]
    assert out[6]["keyword_tokens"] == len(" eggs")  # a space joins context and keyword
    for line in (2, 4, 5, 6, 7):
        assert f"kw.jsonl:{line}:" in p.stderr
    assert "Traceback" not in p.stderr
    pf = tmp_path / "p.jsonl"
    pf.write_text('{"context": "how many", "next": " eggs"}\n{"context_ids": [1], "next_ids": [999]}\n')
    p = cli("prob", idx_dir, "--file", pf)
    assert p.returncode == 2 and json.loads(p.stdout.splitlines()[0])["infgram"]["prob"] is not None
    assert "p.jsonl:2: next_ids: token id 999 is outside the vocabulary" in p.stderr
    # eval and candidate files that are not UTF-8
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"question": "fine"}\n{"question": "caf\xe9"}\n')
    _one_line_error(cli("distance", idx_dir, "--eval", bad))
    cand = tmp_path / "cand.jsonl"
    good = read_jsonl_docs(GSM8K_TEST, "question")[:30]
    cand.write_bytes(
        b"".join(json.dumps({"text": t}).encode() + b"\n" for t in good) + b'{"text": "caf\xe9 au lait"}\n'
    )
    p = cli("frontier", idx_dir, "--candidates", cand, "--out", tmp_path / "fr", "--profile-size", "100")
    assert p.returncode == 2 and "cand.jsonl:31: not UTF-8" in p.stderr
    assert json.loads((tmp_path / "fr" / "summary.json").read_text())["n_candidates"] == 30


def test_distance_view_and_outputs(idx_dir, tmp_path):
    ev = tmp_path / "mini.jsonl"
    ev.write_text(
        "".join(
            json.dumps({"id": f"q{k}", "question": t}) + "\n"
            for k, t in enumerate(read_jsonl_docs(GSM8K_TEST, "question")[:40])
        )
    )
    p = cli("distance", idx_dir, "--eval", ev, "--fields", "question", "--json", check=0)
    rows = [json.loads(x) for x in p.stdout.splitlines()]
    assert len(rows) == 40 and all(r["eval"] == "mini" for r in rows)
    p = cli(
        "sql",
        idx_dir,
        "SELECT count(*) AS n, max(novel_13) AS m FROM distance WHERE eval = 'mini'",
        "--format",
        "json",
        check=0,
    )
    got = json.loads(p.stdout.splitlines()[0])
    assert got["n"] == 40 and got["m"] == pytest.approx(max(r["novel_13"] for r in rows))
