"""Embedders and FAISS helpers change no process-wide state, reach no hub unless asked, and copy an index to
the GPUs once per process (checked with a stand-in for faiss-gpu: no GPU is needed)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from freqindex.errors import UsageError
from freqindex.vectors import ann
from tests.conftest import REPO


def test_loading_an_embedder_leaves_environment_and_threads_alone():
    """os.environ and torch's thread count are the same after loading and using an embedder as after
    importing the libraries it wraps (which may set variables of their own on import)."""
    pytest.importorskip("sentence_transformers", reason="the embed extra is not installed")
    code = """
import json, os
import torch, sentence_transformers, transformers  # their own import-time settings are not ours
torch.set_num_threads(1)
env = dict(os.environ)
from freqindex.vectors.embedders import load_embedder
emb = load_embedder("minilm-v1")
emb.encode(["a dog runs in the park"])
emb.token_spans(["word " * 400])
print(json.dumps({"env_changed": sorted(set(os.environ.items()) ^ set(env.items())),
                  "threads": torch.get_num_threads()}))
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout.strip().splitlines()[-1])
    assert got == {"env_changed": [], "threads": 1}
    assert "Token indices sequence length" not in p.stderr


def test_torch_threads_is_scoped():
    torch = pytest.importorskip("torch")
    from freqindex.vectors.embedders import torch_threads

    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_hub_names_fail_at_once_offline(monkeypatch):
    """A model or tokenizer name that is not a local path is refused without touching the network unless
    hub access is allowed (FREQINDEX_ALLOW_HUB=1 or allow_hub=True)."""
    import tokenizers

    from freqindex.text.tokenizers import HFTokenizer

    calls = []

    class Stub:
        @staticmethod
        def from_pretrained(name):
            calls.append(name)
            raise OSError("no network here")

    monkeypatch.setattr(tokenizers, "Tokenizer", Stub)
    monkeypatch.delenv("FREQINDEX_ALLOW_HUB", raising=False)
    with pytest.raises(UsageError, match="not a local path .*FREQINDEX_ALLOW_HUB=1"):
        HFTokenizer("no-such-org/no-such-tokenizer")
    assert calls == []  # refused before any hub call
    monkeypatch.setenv("FREQINDEX_ALLOW_HUB", "1")
    with pytest.raises(UsageError, match="from the hub .*OSError"):
        HFTokenizer("no-such-org/no-such-tokenizer")
    assert calls == ["no-such-org/no-such-tokenizer"]
    from freqindex.vectors.embedders import load_embedder

    monkeypatch.delenv("FREQINDEX_ALLOW_HUB", raising=False)
    with pytest.raises(UsageError, match="not a local directory .*FREQINDEX_ALLOW_HUB=1"):
        load_embedder("st:no-such-org/no-such-model")


def test_gpu_index_is_copied_once(monkeypatch):
    """The GPU path copies a FAISS index to the GPUs on its first search only (a stand-in faiss module
    records the copies)."""
    copies = []

    class GpuIndex:
        def search(self, q, k):
            return np.zeros((len(q), k), np.float32), np.zeros((len(q), k), np.int64)

    class FakeFaiss:
        @staticmethod
        def get_num_gpus():
            return 1

        @staticmethod
        def index_cpu_to_all_gpus(index):
            copies.append(index)
            return GpuIndex()

        @staticmethod
        def try_extract_index_ivf(index):
            return None

    monkeypatch.setattr(ann, "faiss_module", lambda: FakeFaiss)
    cpu_index = object()
    for _ in range(3):
        sims, ids = ann.search(cpu_index, np.zeros((2, 4), np.float32), 5, use_gpu=True)
        assert ids.shape == (2, 5)
    assert copies == [cpu_index]
    other = object()
    ann.search(other, np.zeros((1, 4), np.float32), 5, use_gpu=True)
    assert copies == [cpu_index, other]


def test_nprobe_applies_to_ivf_only():
    faiss = ann.faiss_module()
    flat = ann.new_index("Flat", 8)
    assert ann.set_nprobe(flat, 4) is False
    ivf = ann.new_index("IVF4,Flat", 8)
    x = np.random.default_rng(0).standard_normal((400, 8)).astype(np.float32)
    ivf = ann.train(ivf, x)
    assert ann.set_nprobe(ivf, 3) is True and faiss.extract_index_ivf(ivf).nprobe == 3
    with pytest.raises(UsageError, match="bad --faiss-factory"):
        ann.new_index("IVFnope", 8)


def test_token_spans_of_long_texts_are_not_truncated():
    """Window offsets cover the whole document whatever truncation the model's own encode() left set on
    its tokenizer (the embed stage and candidate mode compute the same windows from them)."""
    pytest.importorskip("sentence_transformers", reason="the embed extra is not installed")
    from freqindex.vectors.embedders import load_embedder

    emb = load_embedder("minilm-v1")
    text = " ".join(f"word{i}" for i in range(700))
    want = emb._model.tokenizer(
        [text], add_special_tokens=False, return_offsets_mapping=True, truncation=False
    )
    want = [tuple(o) for o in want["offset_mapping"][0]]
    assert emb.token_spans([text])[0] == want and len(want) > 700
    emb.encode([text])  # sets truncation to the model's window on the shared tokenizer
    assert emb.token_spans([text])[0] == want


def test_device_choice_and_clear_errors():
    """``auto`` takes the GPU exactly when torch sees one; asking for a GPU this machine lacks, or for an
    unknown device, is a one-line error (also through `freqindex embed`, before any work)."""
    torch = pytest.importorskip("torch")
    from freqindex.vectors.embedders import load_embedder, resolve_device

    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(UsageError, match="--device must be auto, cpu or cuda"):
        resolve_device("tpu")
    emb = load_embedder("minilm-v1", device="cpu")
    assert (emb.device, emb.precision, emb.key) == ("cpu", "fp32", "minilm-v1")
    assert emb.describe()["device"] == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="no CUDA device"):
            resolve_device("cuda")
        from tests.conftest import cli

        r = cli("embed", str(REPO / "no-such-index"), "--device", "cuda")
        assert r.returncode == 2 and "no CUDA device" in r.stderr, r.stderr[-500:]
