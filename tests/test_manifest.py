"""The manifest protects itself (issue #12 item 2): hand edits fail `verify` and open, a tool that writes an
inconsistent manifest and seals it is caught by the consistency checks, old schemas ask for a rebuild, and the
stages that rewrite the manifest (tag) keep it valid. Eval outputs live in the declared evals/ area."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from freqindex.build.append import append_index
from freqindex.build.driver import run_in_process
from freqindex.config import BuildConfig
from freqindex.errors import CheckFailedError, IndexDamagedError, IndexNotFoundError
from freqindex.fsutil import sha256_file
from freqindex.manifest import seal, verify
from freqindex.query.count import count
from freqindex.sqlcat import run_query
from freqindex.suffix.index import Index
from tests.conftest import GSM8K_TRAIN, WIKITEXT, build_in_process, cli


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Two real indexes of the first ~200 kB of WikiText-2 valid (in-process build, infini-gram's indexer):
    ``simple`` with 2 shards, and ``none`` with 1."""
    root = tmp_path_factory.mktemp("manifest")
    raw = WIKITEXT.read_bytes()[:200_000]
    src = root / "wiki.txt"
    src.write_bytes(raw[: raw.rindex(b"\n") + 1])
    build_in_process([src], root / "simple", text_per_line=True, shards=2)
    build_in_process([src], root / "none", text_per_line=True, shards=1, normalize="none")
    return root, src


@pytest.fixture
def idx_copy(built, tmp_path):
    root, _ = built
    shutil.copytree(root / "simple", tmp_path / "idx")
    return tmp_path / "idx"


def _edit(index_dir, change, reseal: bool) -> None:
    p = index_dir / "manifest.json"
    m = json.loads(p.read_text())
    change(m)
    p.write_text(json.dumps(seal(m) if reseal else m, indent=2, sort_keys=True))


def _set(path: str, value):
    def change(m):
        *head, last = path.split(".")
        d = m
        for k in head:
            d = d[int(k)] if isinstance(d, list) else d[k]
        d[last] = value(d[last]) if callable(value) else value

    return change


# (hand edit, what the consistency check must name once the edit is sealed as if a tool had written it)
HAND_EDITS = {
    "normalization": (_set("normalization.name", "none"), "does not match the build config's 'simple'"),
    "tokenizer dtype": (_set("tokenizer.dtype", "u16"), "tokenizer dtype 'u16' does not match its width 1"),
    "token_dtype": (_set("token_dtype", "u16"), "token_dtype 'u16' does not match"),
    "doc_start": (_set("shards.1.doc_start", lambda v: v + 5), "shard 1 doc_start is"),
    "n_docs": (_set("shards.0.n_docs", lambda v: v - 1), "shard 0 ds_bytes"),
    "eos": (_set("engine.eos_token_id", 0), "engine eos_token_id is 0; a u8 index needs 254"),
    "emptied files": (_set("files", {}), "sa/tokenized.0 (shard 0) is not listed"),
    "shards: []": (_set("shards", []), "the manifest lists no shards"),
    "ptr_size": (_set("shards.0.ptr_size", 4), "sa/table.0 is listed with"),
    "documents": (_set("counts.documents", lambda v: v + 1), "counts.documents is"),
    "sample_step": (_set("shards.0.sample_step", 3), "has sample_step 3; it must be a power of two"),
    "sample size": (_set("shards.1.sample_step", 512), "sa/sample.1 is listed with"),
    "file size": (
        lambda m: m["files"]["sa/offset.1"].update(size=8),
        "sa/offset.1 is listed with 8 bytes but shard 1 needs",
    ),
}


@pytest.mark.parametrize("edit", list(HAND_EDITS))
def test_hand_edits_fail_verify_and_open(idx_copy, edit):
    change, named = HAND_EDITS[edit]
    original = (idx_copy / "manifest.json").read_bytes()
    _edit(idx_copy, change, reseal=False)  # a person's edit: the seal no longer matches
    with pytest.raises(CheckFailedError, match="manifest.json does not match its manifest_sha256"):
        verify(idx_copy)
    with pytest.raises(IndexDamagedError, match="manifest_sha256"):
        Index.open(idx_copy)
    (idx_copy / "manifest.json").write_bytes(original)
    _edit(idx_copy, change, reseal=True)  # as if a tool wrote it: the consistency checks must name it
    with pytest.raises(CheckFailedError) as exc:
        verify(idx_copy)
    assert named in str(exc.value)
    with pytest.raises(IndexDamagedError) as exc:
        Index.open(idx_copy)
    assert named in str(exc.value)


def test_hand_edit_through_the_cli(idx_copy):
    _edit(idx_copy, _set("shards.1.doc_start", lambda v: v - 3), reseal=False)
    p = cli("verify", idx_copy, check=1)
    assert "manifest_sha256" in p.stderr and "Traceback" not in p.stderr
    p = cli("count", idx_copy, " the ", check=2)
    assert "manifest_sha256" in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_verify_checks_contents_a_sealed_manifest_cannot(built, tmp_path):
    """Files and manifest that agree byte for byte but contradict each other's meaning."""
    root, _ = built
    # docs part whose doc_ids are shifted, recorded in a resealed manifest with its new size and sha256
    copy = tmp_path / "shifted"
    shutil.copytree(root / "simple", copy)
    part = copy / "docs" / "part-00001.parquet"
    t = pq.read_table(part)
    t = t.set_column(0, "doc_id", pa.array([d + 1 for d in t.column("doc_id").to_pylist()], pa.int64()))
    pq.write_table(t, part)
    _edit(copy, lambda m: m["files"].update({"docs/part-00001.parquet": _entry(part)}), reseal=True)
    Index.open(copy)  # sizes agree with the manifest: the cheap checks pass
    with pytest.raises(CheckFailedError, match=r"docs/part-00001\.parquet does not hold doc_id"):
        verify(copy)
    # an unnormalized corpus relabelled as `simple` (manifest and config both, resealed)
    copy = tmp_path / "relabelled"
    shutil.copytree(root / "none", copy)
    _edit(
        copy,
        lambda m: (m["normalization"].update(name="simple"), m["config"].update(normalize="simple")),
        True,
    )
    with pytest.raises(CheckFailedError, match="is not normalized with 'simple'"):
        verify(copy)
    # a search sample that is not its suffix array's (two entries swapped), resealed
    copy = tmp_path / "sample"
    shutil.copytree(root / "simple", copy)
    sample = copy / "sa" / "sample.1"
    words = np.fromfile(sample, dtype="<u8")
    words[[3, 4]] = words[[4, 3]]
    words.tofile(sample)
    _edit(copy, lambda m: m["files"].update({"sa/sample.1": _entry(sample)}), reseal=True)
    Index.open(copy)
    with pytest.raises(CheckFailedError, match=r"sa/sample\.1 is not the sample of shard 1's suffix array"):
        verify(copy)


def test_an_index_without_stored_samples_opens_and_counts_the_same(built, tmp_path):
    """Schema 2 (before the build wrote each shard's search sample): the sample is made at first use."""
    root, _ = built
    copy = tmp_path / "schema2"
    shutil.copytree(root / "simple", copy)

    def to_schema_2(m):
        m["schema_version"] = 2
        for sh in m["shards"]:
            del sh["sample_step"]
            del m["files"][f"sa/sample.{sh['shard']}"]

    _edit(copy, to_schema_2, reseal=True)
    for p in (copy / "sa").glob("sample.*"):
        p.unlink()
    verify(copy)
    old, new = Index.open(copy), Index.open(root / "simple")
    assert all(sh.sample is None for sh in old.shards) and all(sh.sample is not None for sh in new.shards)
    terms = [" the ", " of the ", "tion", " valkyria ", " zzzq ", "e"]
    _assert_same_counts(old, new, terms)
    # appended to by this freqindex: the new shard has a stored sample beside the two made on use, and the
    # counts equal a fresh build of both inputs
    root_src = built[1]
    more = tmp_path / "more.txt"
    more.write_text("the valkyria of the north\nanother line of the appended text\n")
    assert (
        append_index(BuildConfig(inputs=(str(more),), output=str(copy)), run_in_process)["status"]
        == "appended"
    )
    grown = Index.open(copy)
    assert [sh.sample is None for sh in grown.shards] == [True, True, False]
    build_in_process([root_src, more], tmp_path / "fresh", text_per_line=True)
    _assert_same_counts(grown, Index.open(tmp_path / "fresh"), terms)


def _assert_same_counts(a: Index, b: Index, terms: list[str]) -> None:
    for unit in ("occurrences", "docs"):
        assert [count(a, t, unit=unit).count for t in terms] == [count(b, t, unit=unit).count for t in terms]


def _entry(p) -> dict:
    return {"size": p.stat().st_size, "sha256": sha256_file(p)}


def test_old_schema_asks_for_a_rebuild_and_the_build_replaces_it(built, tmp_path):
    root, src = built
    copy = tmp_path / "idx"
    shutil.copytree(root / "simple", copy)

    def to_schema_1(m):
        m["schema_version"] = 1
        m.pop("manifest_sha256")
        for sh in m["shards"]:
            sh.pop("ptr_size")

    _edit(copy, to_schema_1, reseal=False)
    with pytest.raises(
        IndexNotFoundError, match=r"rebuild the index with `freqindex build \.\.\. --overwrite`"
    ):
        Index.open(copy)
    summary = build_in_process([src], copy, text_per_line=True, shards=2)  # the same input and settings
    assert summary["status"] == "built"
    shards = Index.open(copy).manifest["shards"]  # the recorded width is the one the table was built with
    assert [s["ptr_size"] for s in shards] == [
        (copy / "sa" / f"table.{s['shard']}").stat().st_size // s["ds_bytes"] for s in shards
    ]


def test_tag_keeps_the_manifest_valid(idx_copy):
    from freqindex.build import run_in_process
    from freqindex.concepts.stage import run_tagging
    from freqindex.concepts.vocab import vocabulary_from_rows

    idx = Index.open(idx_copy)
    vocab = vocabulary_from_rows([(None, "game", []), (None, "river", [])], idx.normalizer, exact=True)
    run_tagging(str(idx_copy), vocab, run_in_process, str(idx_copy / "manifest.json"))
    res = verify(idx_copy)
    tagged = Index.open(idx_copy)
    _, hits = tagged.concept_files()
    assert res["ok"] and len(hits) == tagged.manifest["concepts"]["parts"] >= 2
    _edit(idx_copy, lambda m: m["files"].pop("concepts/hits/part-00000.parquet"), reseal=True)
    with pytest.raises(
        CheckFailedError, match=r"concepts/hits/part-00000\.parquet \(concepts\) is not listed"
    ):
        verify(idx_copy)


def test_eval_outputs_are_declared_and_leave_the_index_untouched(idx_copy, tmp_path):
    """contamination writes its default outputs into the declared evals/ area: the core files and the
    manifest stay byte-identical, the SQL view reads the declared table, verify checks it."""
    before = {p: sha256_file(p) for p in idx_copy.rglob("*") if p.is_file()}
    rows = [json.loads(x) for x in GSM8K_TRAIN.read_text().splitlines()[:5]]
    first = Index.open(idx_copy).doc_text(3).strip()
    rows.append({"question": first})  # a verbatim copy of an indexed document
    ev = tmp_path / "mini.jsonl"
    ev.write_text("".join(json.dumps({"id": f"q{i}", **r}) + "\n" for i, r in enumerate(rows)))
    cli("contamination", idx_copy, "--eval", ev, "--fields", "question", check=0)
    after = {p: sha256_file(p) for p in idx_copy.rglob("*") if p.is_file() and "evals" not in p.parts}
    assert after == before
    cat = json.loads((idx_copy / "evals" / "catalog.json").read_text())
    entry = cat["outputs"]["mini/contamination"]
    assert entry["table"] == "evals/mini/contamination.parquet"
    assert "evals/mini/contamination/report.html" in entry["files"]
    got = run_query(idx_copy, "SELECT id, bucket FROM contamination ORDER BY id").to_pylist()
    assert len(got) == 6 and {r["id"]: r["bucket"] for r in got}["q5"] == "dirty"
    res = verify(idx_copy)
    assert res["eval_outputs_checked"] == 1 and res["eval_files_checked"] == len(entry["files"])
    report = idx_copy / "evals" / "mini" / "contamination" / "report.html"
    report.write_text(report.read_text() + "<!-- edited -->")
    with pytest.raises(CheckFailedError, match=r"evals/mini/contamination/report\.html"):
        verify(idx_copy)
    with open(idx_copy / "evals" / "mini" / "contamination.parquet", "r+b") as f:
        f.truncate(100)
    with pytest.raises(
        IndexDamagedError, match=r"evals/mini/contamination\.parquet is missing or not the size"
    ):
        run_query(idx_copy, "SELECT count(*) FROM docs")


@pytest.mark.parametrize("ds_bytes", [255, 256, 257, 65_536])
def test_a_shard_of_exactly_256_to_the_k_bytes_opens(tmp_path, ds_bytes):
    """A pointer addresses offsets 0 .. ds_bytes - 1, so ptr_size k covers a shard of up to 256**k bytes
    itself (infini-gram's rule: ceil(log2(ds_bytes) / 8) bytes). A 256-byte shard (ptr_size 1) was refused
    as damaged; found by the contamination property test on a generated corpus of that size."""
    probe = tmp_path / "probe.txt"
    probe.write_text("a" * 50 + "\n")
    build_in_process([probe], tmp_path / "probe", text_per_line=True)
    extra = json.loads((tmp_path / "probe" / "manifest.json").read_text())["shards"][0]["ds_bytes"] - 50
    src = tmp_path / "c.txt"
    src.write_text("a" * (ds_bytes - extra) + "\n")
    build_in_process([src], tmp_path / "idx", text_per_line=True)
    shard = json.loads((tmp_path / "idx" / "manifest.json").read_text())["shards"][0]
    assert shard["ds_bytes"] == ds_bytes
    assert shard["ptr_size"] == (1 if ds_bytes <= 256 else 2 if ds_bytes <= 65_536 else 3)
    verify(tmp_path / "idx")
    idx = Index.open(tmp_path / "idx")
    n = ds_bytes - extra
    for k in (1, 7, n):  # "a" * k occurs n - k + 1 times: the suffix array and its pointers are whole
        assert idx.engine.count(input_ids=list(b"a" * k))["count"] == n - k + 1
    assert json.loads(cli("count", tmp_path / "idx", "a" * 7, "--json").stdout)["count"] == n - 6
