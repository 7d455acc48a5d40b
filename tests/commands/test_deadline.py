"""Long library runs stop at their next step once their deadline is cancelled or past (what lets the server
release an index's lock soon after answering 504)."""

from __future__ import annotations

import json
import time

import pytest

from freqindex.build import build_index, run_in_process
from freqindex.commands.concepts import ConceptsConfig, run_concepts
from freqindex.commands.contamination import ContaminationConfig, run_contamination
from freqindex.commands.query import CountConfig, run_count
from freqindex.config import BuildConfig
from freqindex.deadline import Deadline
from freqindex.errors import Cancelled
from freqindex.query.count import count_many
from freqindex.suffix.index import Index


@pytest.fixture(scope="module")
def idx(tmp_path_factory):
    root = tmp_path_factory.mktemp("deadline")
    docs = [f"the quick brown fox number {i} jumps over the lazy dog again and again" for i in range(50)]
    (root / "c.txt").write_text("\n".join(docs) + "\n")
    build_index(
        BuildConfig(inputs=(str(root / "c.txt"),), output=str(root / "idx"), text_per_line=True),
        run_in_process,
    )
    items = [{"id": f"i{k}", "question": docs[k]} for k in range(6)]
    (root / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items))
    return root


def test_deadline_expires_by_time_or_cancel():
    assert not Deadline().expired and not Deadline(60).expired
    d = Deadline(0.05)
    time.sleep(0.06)
    assert d.expired
    with pytest.raises(Cancelled):
        d.check()
    d = Deadline(60)
    d.cancel()
    with pytest.raises(Cancelled):
        d.check()


def test_count_checks_the_deadline_before_each_query(idx):
    """A batch is counted in one compiled search (count_many); the deadline is checked before each query is
    evaluated, so a cancelled request stops there."""
    cfg = CountConfig(index_dir=str(idx / "idx"), queries=(" fox ", " dog ", " lazy "))
    assert [r.count for r in run_count(cfg, deadline=Deadline(60))] == [50, 50, 50]
    d = Deadline()
    d.cancel()
    with pytest.raises(Cancelled):
        run_count(cfg, deadline=d)
    with pytest.raises(Cancelled):
        count_many(Index.open(idx / "idx"), [" fox ", " dog "], deadline=d)


def test_contamination_stops_after_the_current_item(idx):
    cfg = ContaminationConfig(index_dir=str(idx / "idx"), eval_file=str(idx / "eval.jsonl"))
    d = Deadline()
    seen = []

    def progress(_: str, done: int, total: int) -> None:
        seen.append(done)
        if done == 2:
            d.cancel()

    with pytest.raises(Cancelled):
        run_contamination(cfg, write=False, progress=progress, deadline=d)
    assert seen == [1, 2]  # 6 items; the third never started
    assert run_contamination(cfg, write=False).summary["n_items"] == 6


def test_concepts_stop_when_expired(idx, tmp_path):
    (tmp_path / "v.txt").write_text("fox\ndog\n")
    cfg = ConceptsConfig(index_dir=str(idx / "idx"), concepts=str(tmp_path / "v.txt"))
    d = Deadline()
    d.cancel()
    with pytest.raises(Cancelled):
        run_concepts(cfg, deadline=d)
    assert [r["doc_frequency"] for r in run_concepts(cfg).rows] == [50, 50]
