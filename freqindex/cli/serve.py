"""`serve`: the query layer over HTTP."""

from __future__ import annotations

from typing import Annotated

import typer

from freqindex.config import load_config
from freqindex.server.serve import ServeConfig, run_serve

from .common import CacheDir, StorageOptions, app, handle_errors

_S = ServeConfig
IndexDirs = Annotated[
    list[str],
    typer.Argument(
        metavar="DIR...",
        help="Index directories or URLs to serve; each is addressed by its directory name (a URL's last part).",
    ),
]
Host = Annotated[str, typer.Option(help="Address to bind. Anything but loopback requires --token-file.")]
TokenFile = Annotated[
    str | None,
    typer.Option(
        help="File holding the bearer token every request but /healthz must send.", show_default=False
    ),
]
Workers = Annotated[
    int, typer.Option(help="Worker processes (each opens the indexes; the OS shares their memory maps).")
]
Timeout = Annotated[float, typer.Option(help="Per-request time limit in seconds (504 past it).")]
Preload = Annotated[
    bool,
    typer.Option(
        "--preload",
        help="Read the shard files into the page cache in the background at start-up, so that the first "
        "counts after a reboot do not each wait on the disk; /healthz reports the progress. Each file's "
        "cached pages are dropped and read again start to end, which Linux 6.x on ext4/XFS caches in 2 MiB "
        "pages: single counts on large shards miss the TLB less (README, Scale).",
    ),
]
LogLevel = Annotated[str, typer.Option(help="uvicorn log level: critical, error, warning, info, debug.")]


@app.command("serve")
@handle_errors
def serve_cli(
    index_dirs: IndexDirs,
    host: Host = _S.host,
    port: Annotated[int, typer.Option(help="TCP port (0: any free port).")] = _S.port,
    token_file: TokenFile = None,
    workers: Workers = _S.workers,
    timeout: Timeout = _S.timeout_s,
    log_level: LogLevel = _S.log_level,
    preload: Preload = _S.preload,
    cache_dir: CacheDir = None,
    storage_option: StorageOptions = None,
) -> None:
    """Serve indexes over HTTP: count, docs, concepts, neighbors, contamination, read-only SQL, /metrics and
    an OpenAPI spec at /docs and /openapi.json. SIGTERM finishes in-flight requests, then exits.

    Example: freqindex serve idx other-idx --port 8000      (then: curl -s localhost:8000/v1/indexes)
    """
    cfg = load_config(
        ServeConfig,
        overrides=dict(
            index_dirs=index_dirs,
            host=host,
            port=port,
            token_file=token_file,
            workers=workers,
            timeout_s=timeout,
            log_level=log_level,
            preload=preload,
            cache_dir=cache_dir,
            storage_options=storage_option,
        ),
    )
    run_serve(cfg)
