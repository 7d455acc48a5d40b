"""The contamination policy through the CLI: a policy file's `[fields.NAME]` overrides and `--skip`, checked
against a brute-force coverage written from the README's definition (substring search over the stored
documents), on a small index built in-process."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from freqindex.build import build_index, run_in_process
from freqindex.cli import app
from freqindex.config import BuildConfig
from tests.reference import ref_normalize

CORPUS = [
    "Alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma.",
    "The answer is forty two apples, said the teacher.",
    "Nothing to see here but a plain sentence about the weather.",
]
# the question differs from the corpus in one 3-letter word; the answer is short (16 characters)
ITEM = {
    "id": "q1",
    "question": "alpha beta gamma delta epsilon zeta XXX theta iota kappa lambda mu nu xi omicron pi rho sigma",
    "answer": "forty two apples",
}


def ref_coverage(text: str, min_len: int, skip: int) -> float | None:
    """The fraction of the item's characters inside a corpus match of at least ``min_len`` characters, gaps of
    at most ``skip`` characters between two covered runs bridged (never at the ends); None when the item is
    shorter than ``min_len``. Items and documents are stored as " " + normalized + " "."""
    docs = [f" {ref_normalize(d)} " for d in CORPUS]
    stored = f" {ref_normalize(text)} "
    n = len(stored)
    if n - 2 < min_len:
        return None
    covered = [False] * n
    for s in range(n - min_len + 1):
        if any(stored[s : s + min_len] in d for d in docs):
            covered[s : s + min_len] = [True] * min_len
    on = [i for i, c in enumerate(covered) if c]
    for a, b in zip(on, on[1:]):
        if 1 < b - a <= skip + 1:
            covered[a + 1 : b] = [True] * (b - a - 1)
    return sum(covered[1 : n - 1]) / (n - 2)


def bucket(coverage: float) -> str:
    """The README's buckets with the default thresholds: clean < 0.2 <= suspicious < 0.8 <= dirty."""
    return "dirty" if coverage >= 0.8 else "suspicious" if coverage >= 0.2 else "clean"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("policy")
    (root / "c.txt").write_text("\n".join(CORPUS) + "\n")
    build_index(
        BuildConfig(inputs=(str(root / "c.txt"),), output=str(root / "idx"), text_per_line=True),
        run_in_process,
    )
    (root / "eval.jsonl").write_text(json.dumps(ITEM) + "\n")
    return root


def check(world, tmp_path, policy: str | None, *flags: str) -> tuple[dict, dict]:
    args = [
        "contamination",
        str(world / "idx"),
        "--eval",
        str(world / "eval.jsonl"),
        "--fields",
        "question,answer",
    ]
    if policy is not None:
        (tmp_path / "policy.toml").write_text(policy)
        args += ["--config", str(tmp_path / "policy.toml")]
    out = tmp_path / "out"
    r = CliRunner().invoke(app, [*args, *flags, "--out", str(out), "--json"])
    assert r.exit_code == 0, r.stderr
    record = json.loads((out / "items.jsonl").read_text().splitlines()[0])
    return record, json.loads(r.stdout)


def test_field_overrides(world, tmp_path):
    q, a = ITEM["question"], ITEM["answer"]
    # one min_len for both fields: the short answer is uncheckable, the question decides
    rec, summary = check(world, tmp_path, "min_len = 20\n")
    assert rec["fields"]["answer"]["coverage"] is None and ref_coverage(a, 20, 0) is None
    assert rec["fields"]["question"]["coverage"] == pytest.approx(ref_coverage(q, 20, 0))
    assert rec["bucket"] == bucket(ref_coverage(q, 20, 0))
    assert summary["settings"]["min_len_resolved"] == {"question": 20, "answer": 20}
    # [fields.answer] lowers its own min_len: the answer becomes checkable, fully covered, and dirty
    rec, summary = check(world, tmp_path, "min_len = 20\n[fields.answer]\nmin_len = 10\ndirty_at = 0.99\n")
    assert rec["fields"]["answer"]["coverage"] == pytest.approx(ref_coverage(a, 10, 0)) == pytest.approx(1.0)
    assert rec["fields"]["answer"]["bucket"] == "dirty"
    assert rec["fields"]["question"]["coverage"] == pytest.approx(ref_coverage(q, 20, 0))
    assert summary["settings"]["min_len_resolved"] == {"question": 20, "answer": 10}
    # a per-field threshold applies to that field only
    rec, _ = check(world, tmp_path, "min_len = 20\n[fields.question]\ndirty_at = 1.0\nclean_below = 0.99\n")
    assert ref_coverage(q, 20, 0) < 0.99 and rec["fields"]["question"]["bucket"] == "clean"
    assert rec["fields"]["answer"]["bucket"] == "uncheckable"


def test_skip_bridges_mismatches_from_the_file_and_the_flag(world, tmp_path):
    q = ITEM["question"]
    strict, bridged_2, bridged_3 = ref_coverage(q, 20, 0), ref_coverage(q, 20, 2), ref_coverage(q, 20, 3)
    assert strict < bridged_3 == 1.0 and bridged_2 < 1.0  # the gap is the 3 letters of "xxx"
    for policy, flags, want in [
        ("min_len = 20\n", (), strict),
        ("min_len = 20\n", ("--skip", "2"), bridged_2),
        ("min_len = 20\n", ("--skip", "3"), bridged_3),
        ("min_len = 20\nskip = 3\n", (), bridged_3),
        ("min_len = 20\nskip = 3\n", ("--skip", "0"), strict),  # the flag wins over the file
        ("min_len = 20\n[fields.question]\nskip = 3\n", (), bridged_3),  # per field
        ("min_len = 20\n[fields.answer]\nskip = 3\n", (), strict),
    ]:
        rec, summary = check(world, tmp_path, policy, *flags)
        assert rec["fields"]["question"]["coverage"] == pytest.approx(want), (policy, flags)
    rec, _ = check(world, tmp_path, None, "--min-len", "20", "--skip", "3")
    assert rec["fields"]["question"]["coverage"] == pytest.approx(bridged_3) and rec["bucket"] == "dirty"
