"""The suffix-array builders against a brute-force suffix sort, and the real engine over what they write."""

from __future__ import annotations

import random

import numpy as np
import pytest

from freqindex.suffix.sa_build import (
    DIVSUFSORT,
    INFINI_GRAM,
    build_suffix_array,
    choose_builder,
    divsufsort_memory,
    pointer_bytes,
)
from tests.reference import count_token_seq

WIDTHS = {1: "u8", 2: "u16", 4: "u32"}


def brute_table(data: bytes, width: int) -> list[int]:
    """Offsets of the token-aligned suffixes of ``data``, sorted by the bytes of each suffix."""
    return sorted(range(0, len(data), width), key=lambda i: data[i:])


def read_table(path, ds_size: int) -> list[int]:
    ratio = pointer_bytes(ds_size)
    raw = np.fromfile(path, dtype=np.uint8).reshape(-1, ratio)
    buf = np.zeros((raw.shape[0], 8), dtype=np.uint8)
    buf[:, :ratio] = raw
    return buf.view("<u8").ravel().tolist()


def token_bytes(tokens: list[int], width: int) -> bytes:
    return np.asarray(tokens, dtype=f"<u{width}").tobytes()


def inputs(width: int, seed: int) -> dict[str, list[int]]:
    """Token sequences: random over a small vocabulary (ids that differ in either byte), many exact copies of
    one document, and long periodic runs."""
    rng = random.Random(seed)
    vocab = [1, 2, 3, 250] if width == 1 else [1, 2, 256, 257, 513, 65534]
    if width == 4:
        vocab += [1 << 16, (1 << 24) + 1, 2**32 - 2]
    doc = [rng.choice(vocab) for _ in range(37)]
    return {
        "random": [rng.choice(vocab) for _ in range(3000 // width)],
        "copies": (doc + [vocab[-1]]) * (2400 // (38 * width)),
        "periodic": [vocab[0]] * (1500 // width) + [vocab[1], vocab[2], vocab[1]] * (500 // width),
    }


@pytest.mark.parametrize("width", [1, 2, 4])
def test_divsufsort_table_equals_brute_force_suffix_sort(tmp_path, width):
    for kind, tokens in inputs(width, seed=width).items():
        data = token_bytes(tokens, width)
        ds = tmp_path / f"{kind}.ds"
        ds.write_bytes(data)
        used = build_suffix_array(str(ds), str(tmp_path / f"{kind}.sa"), str(tmp_path / "w"), width, 2)
        assert used == DIVSUFSORT
        assert read_table(tmp_path / f"{kind}.sa", len(data)) == brute_table(data, width), (kind, width)
        assert not list(tmp_path.glob("*.tmp"))


def test_64_bit_entries_write_the_same_table(tmp_path):
    """Shards above 2 GiB use libdivsufsort's 64-bit entry point; forced here on a small shard."""
    from freqindex.suffix.sa_build import _build_divsufsort

    data = token_bytes(inputs(2, seed=5)["copies"] + inputs(2, seed=5)["random"], 2)
    ds = tmp_path / "x.ds"
    ds.write_bytes(data)
    for wide in (False, True):
        _build_divsufsort(str(ds), str(tmp_path / f"{wide}.sa"), 2, 1, wide=wide)
        assert read_table(tmp_path / f"{wide}.sa", len(data)) == brute_table(data, 2)


@pytest.mark.parametrize("width", [1, 2, 4])
def test_both_builders_write_the_same_bytes(tmp_path, width):
    """infini-gram's indexer and libdivsufsort agree byte for byte (the suffix array of a string is unique),
    also on a shard split into several make-part parts (2 MiB over a 1 MiB-per-part minimum)."""
    rng = np.random.default_rng(width)
    data = rng.integers(0, 7, 2 * (1 << 20), dtype=np.uint8)
    data[rng.integers(0, data.size, 5000)] = 255
    ds = tmp_path / "random.ds"
    data.tofile(ds)
    tables = {}
    for builder in (DIVSUFSORT, INFINI_GRAM):
        sa = tmp_path / f"{builder}.sa"
        assert build_suffix_array(str(ds), str(sa), str(tmp_path / "w"), width, 2, builder=builder) == builder
        tables[builder] = sa.read_bytes()
    assert tables[DIVSUFSORT] == tables[INFINI_GRAM]
    assert len(tables[DIVSUFSORT]) == (data.size // width) * pointer_bytes(data.size)


def test_builder_follows_the_memory_budget():
    one_gib = 1024**3
    assert divsufsort_memory(one_gib) > 5 * one_gib
    assert choose_builder(one_gib, 6) == DIVSUFSORT
    assert choose_builder(one_gib, 4) == INFINI_GRAM
    assert divsufsort_memory(3 * one_gib) > 27 * one_gib  # 8-byte entries above 2 GiB
    assert choose_builder(3 * one_gib, 6) == INFINI_GRAM


def write_shard_files(root, docs: list[list[int]], width: int) -> None:
    """tokenized.0 / offset.0 in infini-gram's layout: every document preceded by the separator token."""
    sep = [2 ** (8 * width) - 1]
    offsets, pos, parts = [], 0, []
    for d in docs:
        offsets.append(pos)
        b = token_bytes(sep + d, width)
        parts.append(b)
        pos += len(b)
    (root / "tokenized.0").write_bytes(b"".join(parts))
    (root / "offset.0").write_bytes(np.asarray(offsets, dtype="<u8").tobytes())


@pytest.mark.parametrize("width", [1, 2, 4])
def test_engine_counts_on_a_divsufsort_table_equal_brute_force(tmp_path, width):
    from infini_gram.engine import InfiniGramEngine

    rng = random.Random(7 + width)
    vocab = [5, 6, 7, 200] if width == 1 else [5, 6, 300, 301, 40000]
    if width == 4:
        vocab += [70000, 2**31 + 3]
    base = [[rng.choice(vocab) for _ in range(rng.randint(5, 60))] for _ in range(20)]
    docs = base * 6 + [[vocab[0]] * 400, [vocab[1], vocab[2]] * 150] + base[:3]  # copies and periodic runs
    root = tmp_path / "eng"
    root.mkdir()
    write_shard_files(root, docs, width)
    ds_size = (root / "tokenized.0").stat().st_size
    build_suffix_array(str(root / "tokenized.0"), str(root / "table.0"), str(tmp_path / "w"), width, 2)
    limit = 2 ** (8 * width) - 1
    engine = InfiniGramEngine(
        index_dir=str(root), eos_token_id=limit - 1, vocab_size=limit, version=4, token_dtype=WIDTHS[width]
    )
    queries = [[vocab[0]] * k for k in (1, 2, 50, 399, 400, 401)] + [[vocab[1], vocab[2]] * 40]
    for _ in range(150):
        d = rng.choice(docs)
        n = rng.choice([1, 2, 3, 5, 8, 20])
        i = rng.randrange(max(1, len(d) - n + 1))
        queries.append(d[i : i + n])
    queries.append(base[0] + base[1][:3])  # crosses a document boundary: 0 in the engine and the reference
    for q in queries:
        expected, _ = count_token_seq(docs, q)
        got = engine.count(input_ids=q)
        assert got["count"] == expected, (q[:10], len(q), got, expected)
    assert ds_size == sum(len(d) + 1 for d in docs) * width
