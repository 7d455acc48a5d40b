"""User tables written by Windows tools start with a UTF-8 byte-order mark: every loader drops it."""

from __future__ import annotations

import json

import pytest

from freqindex.concepts.vocab import load_vocabulary
from freqindex.config import load_config, read_config_file
from freqindex.contamination.check import Policy
from freqindex.errors import BadInputError
from freqindex.evals import EvalItem, load_eval, load_results, load_rows
from freqindex.fsutil import read_text, strip_bom
from freqindex.text.normalize import get_normalizer

BOM = "\ufeff"


def _write(path, text: str) -> str:
    path.write_text(BOM + text, encoding="utf-8")
    return str(path)


def test_eval_sets_and_results_with_a_bom(tmp_path):
    rows = [{"id": "a", "question": "q one"}, {"id": "b", "question": "q two"}]
    jsonl = _write(tmp_path / "e.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    as_json = _write(tmp_path / "e.json", json.dumps(rows))
    csv = _write(tmp_path / "e.csv", "id,question\r\na,q one\r\nb,q two\r\n")
    for path in (jsonl, as_json, csv):
        assert load_rows(path) == rows, path
        assert [it.id for it in load_eval(path, "id", ["question"])] == ["a", "b"], path
    items = [EvalItem("a", "q one", rows[0]), EvalItem("b", "q two", rows[1])]
    res = _write(tmp_path / "r.csv", "id,model,correct\na,m,1\nb,m,0\n")
    assert load_results(res, items) == {"m": {"a": 1.0, "b": 0.0}}
    (tmp_path / "latin1.csv").write_bytes(b"id,question\na,caf\xe9\n")
    with pytest.raises(BadInputError, match="not UTF-8 text"):
        load_rows(str(tmp_path / "latin1.csv"))


def test_vocabularies_and_config_files_with_a_bom(tmp_path):
    norm = get_normalizer("simple")
    for name, text in (
        ("v.txt", "dog\ncat\n"),
        ("v.csv", "concept,benchmark\ndog,b\ncat,b\n"),
        ("v.json", json.dumps({"b": ["dog", "cat"]})),
        ("v.jsonl", '{"concept": "dog"}\n{"concept": "cat"}\n'),
    ):
        vocab = load_vocabulary(_write(tmp_path / name, text), norm, exact=True)
        assert sorted(c.concept for c in vocab.concepts) == ["cat", "dog"], name
        assert not vocab.warnings, name
    build_toml = _write(tmp_path / "b.toml", '[build]\nformat = "tsv"\n')
    assert read_config_file(build_toml, "build") == {"format": "tsv"}
    assert (
        load_config(Policy, _write(tmp_path / "p.toml", "min_len = 30\n"), section="contamination").min_len
        == 30
    )


def test_the_helpers(tmp_path):
    assert strip_bom(BOM + "x" + BOM) == "x" + BOM and strip_bom("x") == "x"
    assert read_text(_write(tmp_path / "q.txt", " dog \r\n cat \n")).splitlines() == [" dog ", " cat "]
