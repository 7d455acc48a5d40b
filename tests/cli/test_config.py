"""`--config FILE` and `--dry-run` for every command that has them: defaults, then the file, then the flags
given on the command line; unknown keys and wrong types are one-line errors (exit 2). In-process through
typer's CliRunner (no Spark, no index is opened by a dry run)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from freqindex.cli import app


def run(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def dry(*args: str) -> dict:
    r = run(*args, "--dry-run")
    assert r.exit_code == 0, (args, r.exit_code, r.stdout, r.stderr)
    return json.loads(r.stdout)


def test_build_keeps_every_key_of_the_file_and_flags_win(tmp_path):
    f = tmp_path / "build.toml"
    f.write_text(
        '[build]\ninputs = ["a.jsonl", "b.jsonl"]\noutput = "idx"\nsa_mem_gib = 16\nshards = 3\n'
        'text_field = "body"\nspark_conf = { "spark.executor.memory" = "2g" }\n'
    )
    got = dry("build", "--config", f)
    # sa_mem_gib used to be dropped by the CLI (a [build] table with 16 showed 4)
    assert got["sa_mem_gib"] == 16 and got["shards"] == 3 and got["text_field"] == "body"
    assert got["inputs"] == ["a.jsonl", "b.jsonl"] and got["output"] == "idx"
    assert got["spark_conf"] == {"spark.executor.memory": "2g"}
    assert got["format"] == "auto" and got["master"] == "local[*]" and got["normalize"] == "simple"
    got = dry(
        "build", "--config", f, "--shards", "2", "--sa-mem-gib", "8", "--conf", "k=v", "-o", "other", "c.txt"
    )
    assert got["shards"] == 2 and got["sa_mem_gib"] == 8 and got["spark_conf"] == {"k": "v"}
    assert got["output"] == "other" and got["inputs"] == ["c.txt"] and got["text_field"] == "body"
    # without a file: the documented defaults
    got = dry("build", "x.jsonl", "-o", "y")
    assert (got["sa_mem_gib"], got["shards"], got["chunk_bytes"]) == (10, None, 64 * 1024 * 1024)
    assert dry("build", "x.jsonl", "-o", "y", "--chunk-mb", "2")["chunk_bytes"] == 2 * 1024 * 1024


# command, its arguments, the file's table, the flag that overrides one of its keys, and what the dry run
# must show: a key from the file, the overriding flag's value, and a default neither touched
CASES = [
    (
        "tag",
        ["idx"],
        '[tag]\nconcepts = "vocab.txt"\nexact = true\nmaster = "local[1]"\n',
        ["--master", "local[2]"],
        {
            "concepts": "vocab.txt",
            "exact": True,
            "master": "local[2]",
            "label_field": None,
            "index_dir": "idx",
        },
    ),
    (
        "embed",
        ["idx"],
        '[embed]\nchunk_tokens = [64, 128]\ndtype = "float16"\nstride = 16\n',
        ["--stride", "8"],
        {
            "chunk_tokens": [64, 128],
            "dtype": "float16",
            "stride": 8,
            "model": "minilm-v1",
            "faiss_factory": None,
        },
    ),
    (
        "neighbors",
        ["idx"],
        '[neighbors]\neval_file = "test.jsonl"\nfields = ["question", "answer"]\nk = 7\n',
        ["-k", "3"],
        {
            "eval_file": "test.jsonl",
            "fields": ["question", "answer"],
            "k": 3,
            "id_field": "id",
            "out_file": None,
        },
    ),
    (
        "analyze",
        ["idx"],
        '[analyze]\neval_file = "e.jsonl"\nresults = "r.jsonl"\nconcept_field = "label"\nbootstrap = 50\n'
        "prune_sweep = [0.8, 0.95]\n",
        ["--bootstrap", "60"],
        {
            "eval_file": "e.jsonl",
            "concept_field": "label",
            "prune_sweep": [0.8, 0.95],
            "bootstrap": 60,
            "aggregate": "min",
            "prune_threshold": 0.9,
        },
    ),
]


@pytest.mark.parametrize("command,args,table,flags,want", CASES, ids=[c[0] for c in CASES])
def test_config_file_then_flags(tmp_path, command, args, table, flags, want):
    f = tmp_path / "c.toml"
    f.write_text(table)
    got = dry(command, *args, "--config", f, *flags)
    assert {k: got[k] for k in want} == want
    # the same table in a file shared with another command's table
    shared = tmp_path / "shared.toml"
    shared.write_text('[build]\noutput = "elsewhere"\n' + table)
    assert dry(command, *args, "--config", shared, *flags) == got
    # an unknown key is an error naming it, on one line
    bad = tmp_path / "bad.toml"
    bad.write_text(table + "no_such_key = 1\n")
    r = run(command, *args, "--config", bad, "--dry-run")
    assert r.exit_code == 2 and "no_such_key" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_contamination_policy_file_then_flags(tmp_path):
    f = tmp_path / "policy.toml"
    f.write_text("min_len = 30\nskip = 2\nfail_above = 0.5\n[fields.answer]\nmin_len = 10\nskip = 1\n")
    base = ["contamination", "idx", "--eval", "e.jsonl"]
    got = dry(*base, "--config", f)
    p = got["policy"]
    assert (p["min_len"], p["skip"], p["fail_above"], p["clean_below"], p["dirty_at"]) == (
        30,
        2,
        0.5,
        0.2,
        0.8,
    )
    assert p["fields"] == {"answer": {"min_len": 10, "skip": 1}}
    assert got["definitions"] == ["gpt3", "palm", "ig_mini"] and got["fields"] == ["question"]
    got = dry(*base, "--config", f, "--skip", "0", "--min-len", "40", "--fields", "question,answer")
    assert (got["policy"]["skip"], got["policy"]["min_len"], got["policy"]["fail_above"]) == (0, 40, 0.5)
    assert got["fields"] == ["question", "answer"]
    # a [contamination] table works as well as top-level keys
    t = tmp_path / "table.toml"
    t.write_text('[contamination]\nboilerplate_ceiling = 7\n[build]\noutput = "x"\n')
    assert dry(*base, "--config", t, "--definitions", "palm")["policy"]["boilerplate_ceiling"] == 7
    for text, word in [
        ("[fields.answer]\nmin_lenn = 3\n", "min_lenn"),
        ("nope = 1\n", "nope"),
        ('skip = "two"\n', "skip"),
        ("clean_below = 0.9\ndirty_at = 0.5\n", "clean_below"),
    ]:
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        r = run(*base, "--config", bad, "--dry-run")
        assert r.exit_code == 2 and word in r.stderr and "Traceback" not in r.stderr, (text, r.stderr)


def test_bad_config_files_are_one_line_errors(tmp_path):
    cases = [
        (tmp_path / "missing.toml", "not found"),
        (tmp_path, "directory"),
    ]
    broken = tmp_path / "broken.toml"
    broken.write_text("[build\n")
    cases.append((broken, "bad TOML"))
    wrong_type = tmp_path / "wrong.toml"
    wrong_type.write_text('[build]\nshards = "two"\n')
    cases.append((wrong_type, "shards"))
    for path, words in cases:
        r = run("build", "x.jsonl", "-o", "y", "--config", path, "--dry-run")
        assert r.exit_code == 2 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = run("embed", "idx", "--chunk-tokens", "64,x", "--dry-run")
    assert r.exit_code == 2 and "--chunk-tokens" in r.stderr


def test_build_shard_size_and_storage_options_from_file_and_flags(tmp_path):
    """--shard-size and storage options resolve through the same loader: sizes with units, storage options
    with their TOML types (secrets redacted in --dry-run), flags replacing the file's."""
    f = tmp_path / "build.toml"
    f.write_text(
        '[build]\ninputs = ["s3://b/dump/"]\noutput = "s3://b/idx"\nshard_size = "1GB"\n'
        'storage_options = { endpoint_url = "http://minio:9000", secret = "s3cret", "s3.anon" = true }\n'
    )
    got = dry("build", "--config", f)
    assert got["shard_size"] == 10**9
    assert got["storage_options"] == {"endpoint_url": "http://minio:9000", "secret": "***", "s3.anon": True}
    got = dry("build", "--config", f, "--shard-size", "512MiB", "--storage-option", "endpoint_url=http://h:1")
    assert got["shard_size"] == 512 * 2**20 and got["storage_options"] == {"endpoint_url": "http://h:1"}
    r = run("build", "--config", f, "--shard-size", "lots", "--dry-run")
    assert r.exit_code == 2 and "--shard-size" in r.stderr
    # tagging or embedding right after a build needs a local output: refused before anything runs
    r = run("build", "--config", f, "--embed", "--dry-run")
    assert r.exit_code == 2 and "freqindex pull" in r.stderr


@pytest.mark.parametrize(
    "args,want",
    [
        (["--neighbors", "candidates", "--candidates", "8"], {"neighbors": "candidates", "candidates": 8}),
        ([], {"neighbors": "auto", "candidates": None}),
    ],
)
def test_neighbors_mode_in_the_eval_commands_configs(args, want):
    for command in (["neighbors", "idx", "--eval", "e.jsonl"], ["analyze", "idx", "--eval", "e.jsonl"]):
        extra = ["--results", "r.jsonl", "--auto-concepts"] if command[0] == "analyze" else []
        got = dry(*command, *extra, *args)
        assert {k: got[k] for k in want} == want
    got = dry("contamination", "idx", "--eval", "e.jsonl", "--neighbors", "off")
    assert got["neighbors"] == "off"


def test_analyze_per_concept_config():
    got = dry(
        "analyze", "--concept-counts", "c.csv", "--concept-results", "r.csv", "--out", "o", "--bins", "8"
    )
    assert got["index_dir"] is None and got["concept_results"] == "r.csv" and got["bins"] == 8
    assert got["bootstrap"] is None  # 1000 per concept, 200 per item, decided when it runs
    r = run("analyze", "--concept-results", "r.csv", "--eval", "e.jsonl", "--dry-run")
    assert r.exit_code == 2 and "belong to the per-item analysis" in r.stderr
