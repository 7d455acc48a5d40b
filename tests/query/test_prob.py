"""∞-gram / n-gram probabilities and next-token distributions from the batched suffix-array search, against the
infini-gram engine (``infgram_prob``, ``prob``, ``ntd``, ``infgram_ntd``) and an independent brute force, on
real corpora with the bytes tokenizer (a Spark build) and a trained BPE tokenizer (u16 tokens)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from freqindex.build import build_index, run_in_process
from freqindex.config import BuildConfig
from freqindex.query.prob import ProbQuery, find_ranges, infgram_probs, next_tokens, ngram_probs
from freqindex.suffix import lm
from freqindex.suffix.index import Index
from tests.conftest import GSM8K_TEST, GSM8K_TRAIN, WIKITEXT, build
from tests.reference import BruteCorpus, read_jsonl_docs, read_lines_docs, stored

pytestmark = pytest.mark.spark


def _docs_tokens(idx: Index) -> list[list[int]]:
    """Every document's tokens as the index stores them (read through the engine, not the shard arrays)."""
    out = []
    for d in range(idx.total_docs):
        out.append(idx.engine.get_doc_by_ix(doc_ix=d, max_disp_len=10**9)["token_ids"])
    return out


def _shard_tails(idx: Index) -> list[list[int]]:
    tails = []
    for sh in idx.shards:
        a, b = sh.doc_bounds(sh.n_docs - 1, idx.width)
        tails.append(np.frombuffer(bytes(sh.ds[a:b]), dtype=idx.dtype).tolist())
    return tails


def _pairs(rng: random.Random, docs: list[list[int]], held: list[list[int]], alphabet: list[int], n: int):
    """(context, next) pairs: corpus contexts of many lengths with their true next token, held-out prefixes,
    random next tokens, contexts that never occur, and contexts at a document's end."""
    out = []
    lengths = [1, 2, 3, 5, 8, 13, 21, 40, 10**6]
    while len(out) < n:
        kind = len(out) % 5
        if kind == 0:  # inside a corpus document, the true next token
            d = rng.choice([d for d in docs if len(d) > 2])
            t = rng.randrange(1, len(d))
            out.append((d[max(0, t - rng.choice(lengths)) : t], d[t]))
        elif kind == 1:  # a held-out text's whole prefix: the longest-suffix choice matters
            d = rng.choice([d for d in held if len(d) > 2])
            t = rng.randrange(1, len(d))
            out.append((d[:t], d[t]))
        elif kind == 2:  # a corpus context, a random next token (often never seen after it)
            d = rng.choice([d for d in docs if len(d) > 2])
            t = rng.randrange(1, len(d))
            out.append((d[max(0, t - rng.choice(lengths)) : t], rng.choice(alphabet)))
        elif (
            kind == 3
        ):  # a context that never occurs: an unseen token last, or an unseen run before a real one
            d = rng.choice(docs)
            junk = [rng.choice(alphabet) for _ in range(rng.randint(3, 8))]
            ctx = d[: rng.randint(0, min(10, len(d)))] + junk if rng.random() < 0.5 else junk + d[:5]
            out.append((ctx, rng.choice(alphabet)))
        else:  # a document's tail: some occurrences of the context are followed by the document's end
            d = rng.choice([d for d in docs if len(d) > 2])
            out.append((d[-rng.choice(lengths[:6]) :], rng.choice(alphabet)))
    return out


def _check_probs_vs_engine(idx: Index, pairs, n: int) -> None:
    eng = idx.engine
    queries = [ProbQuery(list(c), [y]) for c, y in pairs]
    inf = infgram_probs(idx, queries)
    ng = ngram_probs(idx, queries, n)
    unseen = never = 0
    for (ctx, y), (a,), (b,) in zip(pairs, inf, ng):
        r = eng.infgram_prob(prompt_ids=list(ctx), cont_id=y)
        assert (a.suffix_len, a.prompt_cnt, a.cont_cnt) == (
            r["suffix_len"],
            r["prompt_cnt"],
            r["cont_cnt"],
        ), ctx
        assert a.prob == r["prob"]
        r = eng.prob(prompt_ids=list(ctx[max(0, len(ctx) - (n - 1)) :]) if n > 1 else [], cont_id=y)
        assert (b.prompt_cnt, b.cont_cnt) == (r["prompt_cnt"], r["cont_cnt"]), ctx
        assert (b.prob if b.prob is not None else -1.0) == r["prob"]
        unseen += a.cont_cnt == 0
        never += b.prompt_cnt == 0
    assert unseen > 50 and never > 20  # the hard cases were really exercised


def _check_ntd_vs_engine(idx: Index, contexts, brute: BruteCorpus | None) -> None:
    """Exact and subsampled distributions equal the engine's, except where the engine miscounts: a range that
    starts at a shard's end and ends at a separator (both map to eos), only for contexts that are a suffix of
    a shard's last document; there ours must equal a brute force."""
    eng = idx.engine
    tails = _shard_tails(idx)
    eos = idx.manifest["engine"]["eos_token_id"]
    for ms in (None, 50):
        for infgram in (False, True):
            got = next_tokens(idx, contexts, ms, infgram)
            for c, g in zip(contexts, got):
                fn = eng.infgram_ntd if infgram else eng.ntd
                r = fn(prompt_ids=list(c), max_support=ms or 10**15)
                exp = {k: v["cont_cnt"] for k, v in r["result_by_token_id"].items()}
                assert g.prompt_cnt == r["prompt_cnt"] and g.approx == r["approx"], c
                if infgram:
                    assert g.suffix_len == r["suffix_len"]
                if g.counts != exp:
                    used = list(c[len(c) - g.suffix_len :]) if infgram else list(c)
                    assert any(t[len(t) - len(used) :] == used for t in tails), c
                    if brute is not None and ms is None and idx.width == 1:
                        q = bytes(used)
                        want: dict[int, int] = {}
                        for p in brute.positions(q):
                            nxt = brute.joined[p + len(q)] if p + len(q) < len(brute.joined) else 255
                            want[eos if nxt == 255 else nxt] = want.get(eos if nxt == 255 else nxt, 0) + 1
                        assert g.counts == want, c


@pytest.fixture(scope="module")
def bytes_index(tmp_path_factory):
    root = tmp_path_factory.mktemp("lm-bytes")
    summary = build(
        [WIKITEXT, GSM8K_TRAIN], root / "idx", text_per_line=True, text_field="question", shards=3
    )
    assert summary["shards"] == 3
    texts = read_lines_docs(WIKITEXT) + read_jsonl_docs(GSM8K_TRAIN, "question")
    return Index.open(root / "idx"), texts


def test_bytes_probabilities_equal_engine_and_brute_force(bytes_index):
    idx, texts = bytes_index
    rng = random.Random(16)
    docs = [list(stored(t, "simple").encode()) for t in texts]
    held = [list(stored(t, "simple").encode()) for t in read_jsonl_docs(GSM8K_TEST, "question")[:300]]
    alphabet = list(range(32, 127)) + [0xC7, 0x82]  # printable ASCII, and bytes of a character never indexed
    pairs = _pairs(rng, docs, held, alphabet, 1000)
    _check_probs_vs_engine(idx, pairs, n=4)
    # an independent brute force: substring counts over the stored documents
    brute = BruteCorpus([bytes(d) for d in docs])
    for ctx, y in rng.sample(pairs, 60):
        (a,) = infgram_probs(idx, [ProbQuery(list(ctx), [y])])[0]
        k = next(k for k in range(len(ctx), -1, -1) if k == 0 or brute.count(bytes(ctx[len(ctx) - k :])) > 0)
        prompt = len(brute.joined) if k == 0 else brute.count(bytes(ctx[len(ctx) - k :]))
        assert (a.suffix_len, a.prompt_cnt, a.cont_cnt) == (
            k,
            prompt,
            brute.count(bytes(ctx[len(ctx) - k :] + [y])),
        )
    # the next token after a document's end is the separator: the library counts it like the engine
    tails = [d[-3:] for d in rng.sample(docs, 20)]
    st = lm.infgram_positions(idx, [np.array(t + [255]) for t in tails], [np.array([3])] * len(tails))
    for t, s in zip(tails, st):
        r = idx.engine.infgram_prob(prompt_ids=t, cont_id=255)
        assert (s.suffix_len[0], s.prompt_cnt[0], s.cont_cnt[0]) == (
            r["suffix_len"],
            r["prompt_cnt"],
            r["cont_cnt"],
        )
        assert s.cont_cnt[0] > 0
    # next-token distributions (exact and subsampled, plain and ∞-gram)
    contexts = [c for c, _ in rng.sample(pairs, 100)] + [[32], list(b" the"), list(b"s "), []]
    _check_ntd_vs_engine(idx, contexts, brute)
    # find: per-shard ranges equal the engine's segments
    some = [c for c in contexts if c][:60]
    for c, seg in zip(some, find_ranges(idx, some)):
        assert seg == [list(x) for x in idx.engine.find(input_ids=c)["segment_by_shard"]]


def test_u16_probabilities_equal_engine(tmp_path):
    texts = read_lines_docs(WIKITEXT)[:1200] + read_jsonl_docs(GSM8K_TRAIN, "question")[:1500]
    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=2000, special_tokens=["[UNK]"]))
    tok.save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "c.txt").write_text("\n".join(texts) + "\n")
    build_index(
        BuildConfig(
            inputs=(str(tmp_path / "c.txt"),),
            output=str(tmp_path / "idx"),
            tokenizer=str(tmp_path / "tokenizer.json"),
            text_per_line=True,
            shards=2,
        ),
        run_in_process,
    )
    idx = Index.open(tmp_path / "idx")
    assert idx.manifest["tokenizer"]["dtype"] == "u16"
    docs = _docs_tokens(idx)
    held = [
        tok.encode(t, add_special_tokens=False).ids for t in read_jsonl_docs(GSM8K_TEST, "question")[:300]
    ]
    rng = random.Random(61)
    pairs = _pairs(rng, docs, held, list(range(1, idx.tokenizer.vocab_size)), 1000)
    _check_probs_vs_engine(idx, pairs, n=3)
    contexts = [c for c, _ in rng.sample(pairs, 100)] + [[], docs[0][:2]]
    _check_ntd_vs_engine(idx, contexts, None)
