"""Concept vocabularies, tagging (Spark) vs suffix-array counts vs a regex brute force, and the SQL views."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from freqindex.concepts.vocab import load_vocabulary
from freqindex.errors import BadInputError
from freqindex.fsutil import sha256_file
from freqindex.query.concepts import concept_counts
from freqindex.suffix.index import Index
from freqindex.text.normalize import get_normalizer
from tests.conftest import DATA, FLICKR, WIKITEXT, build, cli
from tests.reference import read_lines_docs, ref_normalize

CLASSNAMES = DATA / "concepts" / "clip_benchmark_en_classnames.json"
SIMPLE = get_normalizer("simple")


# ---------------------------------------------------------------- vocabularies (no Spark)


def test_vocabulary_formats_and_inflections(tmp_path):
    (tmp_path / "v.txt").write_text("Dog\nGolden Retriever\n\nmouse\n")
    v = load_vocabulary(str(tmp_path / "v.txt"), SIMPLE)
    forms = {c.concept: c.forms for c in v.concepts}
    assert forms == {
        "Dog": ["dog", "dogs"],
        "Golden Retriever": ["golden retriever", "golden retrievers"],
        "mouse": ["mice", "mouse"],
    }
    exact = load_vocabulary(str(tmp_path / "v.txt"), SIMPLE, exact=True)
    assert {c.concept: c.forms for c in exact.concepts}["Dog"] == ["dog"]
    # ids are stable: the same name gives the same id in another file and another run
    (tmp_path / "w.csv").write_text('concept,aliases\n"dog","hound|pup"\ncat,\n')
    w = load_vocabulary(str(tmp_path / "w.csv"), SIMPLE)
    assert {c.concept: c.concept_id for c in w.concepts}["dog"] == {
        c.concept: c.concept_id for c in v.concepts
    }["Dog"]
    assert {c.concept: c.forms for c in w.concepts}["dog"] == [
        "dog",
        "dogs",
        "hound",
        "hounds",
        "pup",
        "pups",
    ]
    (tmp_path / "x.jsonl").write_text('{"concept": "cat", "aliases": ["kitty"], "benchmark": "pets"}\n')
    x = load_vocabulary(str(tmp_path / "x.jsonl"), SIMPLE)
    assert x.concepts[0].benchmark == "pets" and "kitties" in x.concepts[0].forms
    pq.write_table(pa.table({"concept": ["owl"], "aliases": [["barn owl"]]}), tmp_path / "y.parquet")
    assert load_vocabulary(str(tmp_path / "y.parquet"), SIMPLE).concepts[0].forms == [
        "barn owl",
        "barn owls",
        "owl",
        "owls",
    ]
    (tmp_path / "e.jsonl").write_text('{"label": "zebra"}\n{"label": "zebra"}\n{"label": "lion"}\n')
    e = load_vocabulary(str(tmp_path / "e.jsonl"), SIMPLE, label_field="label")
    assert sorted(c.concept for c in e.concepts) == ["lion", "zebra"] and e.warnings


def test_real_classnames_load_with_benchmarks():
    v = load_vocabulary(str(CLASSNAMES), SIMPLE)
    raw = json.loads(CLASSNAMES.read_text())
    assert {c.benchmark for c in v.concepts} == set(raw)
    # 1,665 names: the one empty CLEVR label is skipped, ImageNet's duplicates merge, both with a warning.
    # The reference: distinct (benchmark, normalized name) pairs of the raw file, normalized independently.
    names = [(b, n) for b, ns in raw.items() for n in ns]
    assert len(names) == 1665
    nonempty = [(b, ref_normalize(n)) for b, n in names if ref_normalize(n)]
    assert len(nonempty) == 1665 - 1
    assert len(v.concepts) == len(set(nonempty))
    assert sum(w.startswith("duplicate") for w in v.warnings) == len(nonempty) - len(set(nonempty)) > 0
    assert any("empty name" in w for w in v.warnings) and any(
        "duplicate concept 'missile'" in w for w in v.warnings
    )


def test_malformed_vocabularies(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(BadInputError, match="bad JSON"):
        load_vocabulary(str(tmp_path / "bad.json"), SIMPLE)
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(BadInputError, match="no concepts"):
        load_vocabulary(str(tmp_path / "empty.txt"), SIMPLE)
    (tmp_path / "blank.json").write_text('{"b": ["", "  ", "!!"]}')
    with pytest.raises(BadInputError, match="every concept name is empty"):
        load_vocabulary(str(tmp_path / "blank.json"), SIMPLE)
    (tmp_path / "num.json").write_text('{"b": ["ok", 5]}')
    with pytest.raises(BadInputError, match="not a string"):
        load_vocabulary(str(tmp_path / "num.json"), SIMPLE)
    (tmp_path / "nocol.csv").write_text("name\ndog\n")
    with pytest.raises(BadInputError, match="'concept' column"):
        load_vocabulary(str(tmp_path / "nocol.csv"), SIMPLE)
    p = cli("concepts", tmp_path, "--concepts", tmp_path / "bad.json")
    assert p.returncode == 2 and "Traceback" not in p.stderr


# ---------------------------------------------------------------- real data, Spark


def _brute(docs: list[str], forms: list[str]) -> tuple[int, int]:
    """Whole-word matches with a regular expression (word = run of non-spaces) over normalized documents (a
    form that is not even a substring of a document is not searched there: the same counts, sooner)."""
    pats = [(f, re.compile(r"(?=(?<!\S)" + re.escape(f) + r"(?!\S))")) for f in forms]
    occ = nd = 0
    for d in docs:
        c = sum(len(p.findall(d)) for f, p in pats if f in d)
        occ += c
        nd += c > 0
    return occ, nd


@pytest.fixture(scope="module")
def tagged(tmp_path_factory):
    root = tmp_path_factory.mktemp("concepts")
    idx_dir = root / "idx"
    build([FLICKR, WIKITEXT], idx_dir, text_per_line=True, shards=2)
    before = {
        p.relative_to(idx_dir): sha256_file(p)
        for p in idx_dir.rglob("*")
        if p.is_file() and p.name != "manifest.json"
    }
    p = cli("tag", idx_dir, "--concepts", CLASSNAMES, "--master", "local[2]", "--json", check=0)
    summary = json.loads(p.stdout)
    after = {
        p.relative_to(idx_dir): sha256_file(p)
        for p in idx_dir.rglob("*")
        if p.is_file() and p.name != "manifest.json" and "concepts" not in p.parts
    }
    assert before == after  # tagging kept every file the index had
    return idx_dir, summary


@pytest.mark.spark
def test_tags_and_suffix_arrays_agree_on_every_concept(tagged):
    idx_dir, summary = tagged
    idx = Index.open(idx_dir)
    vocab = load_vocabulary(str(CLASSNAMES), SIMPLE)
    assert summary["concepts"] == len(vocab.concepts) and idx.manifest["concepts"]["key"] == vocab.key
    src_t, tags = concept_counts(idx, vocab, "tags")
    src_s, suffix = concept_counts(idx, vocab, "suffix")
    assert (src_t, src_s) == ("tags", "suffix")
    assert tags == suffix
    assert sum(r["doc_frequency"] > 0 for r in tags) > 200
    assert concept_counts(idx, vocab, "auto")[0] == "tags"
    assert cli("verify", idx_dir).returncode == 0


@pytest.mark.spark
def test_both_paths_equal_regex_brute_force(tmp_path):
    docs_raw = read_lines_docs(FLICKR)[:6000] + read_lines_docs(WIKITEXT)[:600]
    src = tmp_path / "c.txt"
    src.write_text("\n".join(docs_raw) + "\n")
    build([src], tmp_path / "idx", text_per_line=True)
    norm_docs = [ref_normalize(d) for d in docs_raw]
    idx = Index.open(tmp_path / "idx")
    exact = load_vocabulary(str(CLASSNAMES), SIMPLE, exact=True)
    p = cli("tag", tmp_path / "idx", "--concepts", CLASSNAMES, "--exact", "--master", "local[2]", check=0)
    assert "Traceback" not in p.stderr
    _, tags = concept_counts(Index.open(tmp_path / "idx"), exact, "tags")
    _, suffix = concept_counts(idx, exact, "suffix")
    assert tags == suffix
    for c, r in zip(exact.concepts, tags):
        assert (r["occurrences"], r["doc_frequency"]) == _brute(norm_docs, c.forms), c.concept
    infl = load_vocabulary(str(CLASSNAMES), SIMPLE)
    _, rows = concept_counts(idx, infl, "suffix")
    by = {c.concept_id: c for c in infl.concepts}
    sample = [r for r in rows if r["doc_frequency"] > 0][:60]
    for r in sample:
        assert (r["occurrences"], r["doc_frequency"]) == _brute(norm_docs, by[r["concept_id"]].forms)
    # inflections on: ImageNet's "mountain" and "golden retriever" also count their plurals (written here by
    # hand), which this corpus holds, so the counts are larger than the singular's alone
    counted = {(by[r["concept_id"]].benchmark, ref_normalize(by[r["concept_id"]].concept)): r for r in rows}
    for name, plural in (("mountain", "mountains"), ("golden retriever", "golden retrievers")):
        r = counted[("imagenet1k", name)]
        assert plural in by[r["concept_id"]].forms
        assert (r["occurrences"], r["doc_frequency"]) == _brute(norm_docs, [name, plural])
        assert _brute(norm_docs, [plural])[1] > 0
        assert r["doc_frequency"] > _brute(norm_docs, [name])[1]


# ---------------------------------------------------------------- SQL


@pytest.mark.spark
def test_sql_views_equal_the_parquet_they_read(tagged):
    idx_dir, _ = tagged
    n_docs = pq.read_table(idx_dir / "docs").num_rows
    rows = [
        json.loads(x)
        for x in cli(
            "sql", idx_dir, "SELECT count(*) AS n FROM docs", "--format", "json", check=0
        ).stdout.splitlines()
    ]
    assert rows == [{"n": n_docs}]
    hits = pq.read_table(idx_dir / "concepts" / "hits").to_pandas()
    direct = hits.groupby("concept_id").agg(occ=("occurrences", "sum"), df=("doc_id", "count"))
    out = cli(
        "sql",
        idx_dir,
        "SELECT concept_id, occurrences, doc_frequency FROM concept_freq WHERE doc_frequency > 0",
        "--format",
        "json",
        check=0,
    ).stdout.splitlines()
    got = {r["concept_id"]: (r["occurrences"], r["doc_frequency"]) for r in map(json.loads, out)}
    assert got == {int(k): (int(v.occ), int(v.df)) for k, v in direct.iterrows()}
    for name in (
        "top_concepts",
        "rarest_concepts",
        "concept_frequency_bins",
        "never_occurring_concepts",
        "docs_per_source",
    ):
        p = cli("sql", idx_dir, "--file", f"sql/{name}.sql", "--format", "csv", check=0)
        assert len(p.stdout.splitlines()) > 1, name


@pytest.mark.spark
def test_exported_catalog_opens_in_a_fresh_duckdb_process(tagged, tmp_path):
    idx_dir, _ = tagged
    cat = tmp_path / "catalog.duckdb"
    cli("sql", idx_dir, "--export", cat, check=0)
    code = (
        "import duckdb,sys; c=duckdb.connect(sys.argv[1], read_only=True); "
        "print(c.execute('select count(*) from docs').fetchone()[0], "
        "c.execute('select count(*) from concept_freq').fetchone()[0])"
    )
    p = subprocess.run([sys.executable, "-c", code, str(cat)], capture_output=True, text=True, check=True)
    n_docs, n_concepts = map(int, p.stdout.split())
    assert n_docs == pq.read_table(idx_dir / "docs").num_rows and n_concepts > 1000


@pytest.mark.spark
def test_sql_is_read_only_and_sandboxed(tagged, tmp_path):
    idx_dir, _ = tagged
    attempts = [
        "SELECT * FROM read_csv('/etc/passwd')",
        f"COPY docs TO '{tmp_path}/x.csv'",
        f"ATTACH '{tmp_path}/x.duckdb' AS x",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access=true",
        "CREATE TABLE t AS SELECT 1",
        "SELECT * FROM read_parquet('/etc/*.parquet')",
        "SELEC oops",
    ]
    for sql in attempts:
        p = cli("sql", idx_dir, sql)
        assert p.returncode == 2, (sql, p.stdout, p.stderr)
        assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1, (sql, p.stderr)
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "x.duckdb").exists()
    # a fresh in-process connection can read the views but not other files
    from freqindex.sqlcat import open_catalog

    con = open_catalog(idx_dir)
    assert con.execute("SELECT count(*) FROM quarantine").fetchone()[0] == 0
    with pytest.raises(duckdb.Error):
        con.execute("SELECT * FROM read_csv('/etc/passwd')")
