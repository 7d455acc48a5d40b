"""Embedding throughput per backend and device (#13, "Embedding at scale").

    python benchmarks/bench_embed.py --out bench-out [--docs 400] [--threads 2]

Texts are the windows the embed stage makes (``multi_windows`` with the default sizes 32, 64 and 128 model
tokens, half-window strides) over real text: GSM8K train questions and WikiText-2 paragraphs (``--docs``
documents, half and half). Variants, each embedding all windows twice in alternation (the faster pass
counts; the first also warms caches and ONNX Runtime's arena):

- ``torch`` on the CPU: freqindex's embedder (sentence-transformers, PyTorch, fp32): the default;
- ``onnxruntime`` on the CPU: the same weights exported here with ``torch.onnx.export`` and run by ONNX
  Runtime, with the same tokenizer, batching (32, longest first), mean pooling and normalization.
  sentence-transformers' own ONNX backend needs optimum-onnx, which requires transformers < 4.58 while
  freqindex runs transformers 5, so it cannot be installed beside it; this export is the same graph;
- ``torch`` on ``cuda``, fp16 (what ``--device auto`` does on a GPU executor), when torch sees a GPU.

Reported per variant: windows/s, model tokens/s, and the largest absolute difference of a cosine (200 GSM8K
test questions x 200 windows) from the torch CPU one. Writes ``--out/embed.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA  # noqa: E402


def texts(n_docs: int) -> tuple[list[str], list[str]]:
    qs = [json.loads(ln)["question"] for ln in (DATA / "evals/gsm8k/train.jsonl").read_text().splitlines()]
    wiki = [ln for ln in (DATA / "corpora/wikitext2/valid.txt").read_text().split("\n") if len(ln) > 200]
    tests = [json.loads(ln)["question"] for ln in (DATA / "evals/gsm8k/test.jsonl").read_text().splitlines()]
    return qs[: n_docs // 2] + wiki[: n_docs - n_docs // 2], tests[:200]


def onnx_encoder(emb, work: Path, threads: int):
    """An encode(texts) over ONNX Runtime for a sentence-transformers BERT model (see the docstring)."""
    import onnxruntime as ort
    import torch

    st = emb._model
    tok = st.tokenizer
    names = ["input_ids", "attention_mask", "token_type_ids"]

    class Wrapped(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    path = work / "minilm.onnx"
    enc = tok(["a dog", "two dogs run"], return_tensors="pt", padding=True)
    torch.onnx.export(
        Wrapped(st[0].auto_model).eval(),
        tuple(enc[n] for n in names),
        str(path),
        input_names=names,
        output_names=["last_hidden_state"],
        dynamic_axes={n: {0: "batch", 1: "seq"} for n in [*names, "last_hidden_state"]},
        opset_version=17,
        dynamo=False,
    )
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

    def encode(texts: list[str], bs: int = 32) -> np.ndarray:
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.empty((len(texts), emb.dim), np.float32)
        for a in range(0, len(order), bs):
            idx = order[a : a + bs]
            e = tok(
                [texts[i] for i in idx], return_tensors="np", padding=True, truncation=True, max_length=256
            )
            h = sess.run(None, {n: e[n].astype(np.int64) for n in names})[0]
            m = e["attention_mask"][..., None].astype(np.float32)
            v = (h * m).sum(1) / np.maximum(m.sum(1), 1e-9)
            out[idx] = v / np.linalg.norm(v, axis=1, keepdims=True)
        return out

    return encode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench-out")
    ap.add_argument("--docs", type=int, default=400)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()

    import torch

    from freqindex import settings
    from freqindex.vectors.embedders import load_embedder, multi_windows

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    docs, items = texts(args.docs)
    t = time.monotonic()
    cpu = load_embedder("minilm-v1", device="cpu")
    loads = {"cpu/torch": time.monotonic() - t}
    pieces = []
    for d, sp in zip(docs, cpu.token_spans(docs)):
        for a, b in multi_windows(sp, settings.EMBED_CHUNK_TOKENS, None):
            pieces.append(d[a:b])
    n_tokens = sum(len(s) for s in cpu.token_spans(pieces))
    t = time.monotonic()
    variants = {"cpu/torch": cpu.encode, "cpu/onnxruntime": onnx_encoder(cpu, out_dir, args.threads)}
    loads["cpu/onnxruntime"] = time.monotonic() - t
    if torch.cuda.is_available():
        t = time.monotonic()
        variants["cuda/torch-fp16"] = load_embedder("minilm-v1", device="cuda").encode
        loads["cuda/torch-fp16"] = time.monotonic() - t
    passes: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(2):  # alternating passes
        for name, fn in variants.items():
            t = time.monotonic()
            fn(pieces)
            passes[name].append(time.monotonic() - t)
    ref = cpu.encode(items) @ cpu.encode(pieces[:200]).T
    results = []
    for name, fn in variants.items():
        best = min(passes[name])
        cos = fn(items) @ fn(pieces[:200]).T
        row = {
            "variant": name,
            "setup_seconds": round(loads[name], 2),
            "seconds": [round(p, 2) for p in passes[name]],
            "windows_per_s": round(len(pieces) / best, 1),
            "tokens_per_s": round(n_tokens / best),
            "max_abs_cosine_diff_vs_cpu_torch": float(np.abs(cos - ref).max()),
        }
        print(json.dumps(row), flush=True)
        results.append(row)
    base = results[0]["tokens_per_s"]
    out = {
        "windows": len(pieces),
        "model_tokens": n_tokens,
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
        "load_avg_after": round(os.getloadavg()[0], 1),
        "variants": results,
        "speed_vs_cpu_torch": {r["variant"]: round(r["tokens_per_s"] / base, 2) for r in results},
    }
    (out_dir / "embed.json").write_text(json.dumps(out, indent=1))
    print(json.dumps(out["speed_vs_cpu_torch"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
