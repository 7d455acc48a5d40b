"""A real S3-compatible server on loopback for the tests (moto's standalone ``moto_server``, the server
s3fs's own test suite runs against), and a small corpus recombined from ../shared/data to put in it."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import random
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tests.conftest import FLICKR, GSM8K_TRAIN, WIKITEXT, free_port

# fake credentials: the server accepts any, and real ones must never be sent to it
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "freqindex-test",
    "AWS_SECRET_ACCESS_KEY": "freqindex-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def _moto_binary() -> str:
    local = Path(sys.executable).parent / "moto_server"
    found = str(local) if local.exists() else shutil.which("moto_server")
    if not found:
        raise RuntimeError("moto_server is not installed: pip install 'freqindex[dev]' (moto[server])")
    return found


@contextlib.contextmanager
def moto_server(log_dir: Path, server_env: dict[str, str] | None = None) -> Iterator[str]:
    """Start ``moto_server`` on 127.0.0.1 (a free port); yields its endpoint URL; stops it on the way out.
    The AWS variables of :data:`S3_ENV` are set in this process (and so in the subprocesses it starts);
    ``server_env`` is added to the server's own environment (``INITIAL_NO_AUTH_ACTION_COUNT=0``: it checks
    credentials and refuses unknown ones)."""
    saved = {k: os.environ.get(k) for k in S3_ENV}
    os.environ.update(S3_ENV)
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = open(log_dir / "moto_server.log", "wb")
    proc = subprocess.Popen(
        [_moto_binary(), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(server_env or {})},
    )
    try:
        for _ in range(600):  # up to 60 s on a busy machine
            if proc.poll() is not None:
                raise RuntimeError(f"moto_server exited: {(log_dir / 'moto_server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(endpoint + "/", timeout=1):
                    break
            except urllib.error.HTTPError:  # it answers (a server that checks credentials refuses this)
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("moto_server did not answer within 60 s")
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def s3fs_for(endpoint: str):
    """An s3fs filesystem on the test server (a fresh instance, no listing cache)."""
    import s3fs

    return s3fs.S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True, use_listings_cache=False)


def make_corpus(root: Path, seed: int = 0) -> Path:
    """A small corpus of every kind, about 400 KB, recombined from real data: an uncompressed JSONL large
    enough to be read in byte ranges, a .jsonl.gz, a Parquet file of three row groups, TSV captions, a .txt
    of one document, one bad record and one file that is skipped."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    gsm = [json.loads(ln) for ln in GSM8K_TRAIN.read_text(encoding="utf-8").splitlines()[:1200]]
    wiki = [ln for ln in WIKITEXT.read_text(encoding="utf-8").split("\n") if len(ln.strip()) > 40][:600]
    caps = FLICKR.read_text(encoding="utf-8").splitlines()[:800]
    with open(root / "a.jsonl", "w", encoding="utf-8") as f:
        for i, row in enumerate(gsm[:700]):
            f.write(json.dumps({"id": f"g{i}", "text": row["question"] + " " + row["answer"]}) + "\n")
        f.write('{"text": "broken\n')  # one malformed record: quarantined with its line
    with gzip.open(root / "b.jsonl.gz", "wt", encoding="utf-8") as f:
        for i, row in enumerate(gsm[700:]):
            f.write(json.dumps({"id": f"h{i}", "text": rng.choice(wiki) + " " + row["question"]}) + "\n")
    table = pa.table({"id": [f"w{i}" for i in range(len(wiki))], "text": wiki})
    pq.write_table(table, root / "c.parquet", row_group_size=len(wiki) // 3 + 1)
    (root / "d.tsv").write_text("\n".join(caps) + "\n", encoding="utf-8")
    (root / "e.txt").write_text(" ".join(wiki[:50]), encoding="utf-8")
    (root / "README.md").write_text("# not corpus\n", encoding="utf-8")
    return root


def upload(fs, local: Path, url: str) -> None:
    """Copy a local directory tree to ``url`` (s3://bucket/prefix)."""
    for p in sorted(local.rglob("*")):
        if p.is_file():
            fs.put_file(str(p), f"{url.removeprefix('s3://')}/{p.relative_to(local)}")
