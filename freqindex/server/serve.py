"""`serve`'s config and launch: checks (a token off loopback), the app built once in this process (bad
indexes fail before binding), then uvicorn with one process or ``workers`` processes."""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from freqindex import settings
from freqindex.errors import UsageError
from freqindex.extras import require


@dataclass(frozen=True)
class ServeConfig:
    index_dirs: tuple[str, ...] = ()
    host: str = settings.DEFAULT_HOST
    port: int = settings.DEFAULT_PORT
    token_file: str | None = None
    workers: int = 1
    timeout_s: float = settings.REQUEST_TIMEOUT_S
    log_level: str = "info"
    preload: bool = False  # read the shard files into the page cache in the background at start-up
    cache_dir: str | None = None  # where indexes given as URLs are cached locally
    storage_options: tuple[tuple[str, Any], ...] = field(default_factory=tuple)

    def validate(self) -> ServeConfig:
        if not self.index_dirs:
            raise UsageError("give at least one index DIR to serve")
        if self.workers < 1 or not 0 < self.timeout_s <= 3600:
            raise UsageError("--workers must be >= 1 and --timeout in (0, 3600]")
        if self.token_file is None and not _is_loopback(self.host):
            raise UsageError(
                f"binding {self.host} exposes the service: give --token-file (or bind 127.0.0.1)"
            )
        return self


def _is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_token(token_file: str | None) -> str | None:
    """The bearer token in ``token_file`` (stripped; at least 16 characters), or None without a file."""
    if token_file is None:
        return None
    try:
        token = Path(token_file).read_text().strip()
    except OSError as exc:
        raise UsageError(f"cannot read --token-file {token_file}: {exc.strerror}") from None
    if len(token) < 16:
        raise UsageError("the token in --token-file must be at least 16 characters")
    return token


def print_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def check_port(host: str, port: int) -> None:
    """Fail at once, in one line, when ``host:port`` cannot be listened on (in use, not permitted, no such
    address), before the indexes are opened; uvicorn would say it in a log line after loading them."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind(address)
        except OSError as exc:
            hint = " (another process holds it: choose another --port, or 0 for any free port)"
            in_use = exc.errno == errno.EADDRINUSE
            raise UsageError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint if in_use else ''}"
            ) from None


def run_serve(cfg: ServeConfig) -> None:
    """Serve until SIGTERM/SIGINT (in-flight requests get settings.GRACEFUL_SHUTDOWN_S to finish)."""
    require("fastapi", "serve", "the server")
    uvicorn = require("uvicorn", "serve", "the server")
    require("prometheus_client", "serve", "the server")
    from freqindex.remote import local_index

    from .app import ENV_CONFIG, create_app

    token = read_token(cfg.token_file)
    check_port(cfg.host, cfg.port)
    dirs = [
        str(Path(local_index(d, cfg.cache_dir, cfg.storage_options, on_message=print_stderr)).resolve())
        for d in cfg.index_dirs
    ]
    # open everything once here: bad indexes fail before binding; with --workers N, the workers share the
    # page cache this process's preload fills (their /healthz does not report it)
    app = create_app(dirs, token, cfg.timeout_s, print_stderr if cfg.preload else None)
    kw = dict(
        host=cfg.host,
        port=cfg.port,
        log_level=cfg.log_level,
        timeout_graceful_shutdown=settings.GRACEFUL_SHUTDOWN_S,
    )
    if cfg.workers == 1:
        uvicorn.run(app, **kw)
        return
    token_file = str(Path(cfg.token_file).resolve()) if cfg.token_file else None
    os.environ[ENV_CONFIG] = json.dumps(
        {"indexes": dirs, "token_file": token_file, "timeout_s": cfg.timeout_s}
    )
    uvicorn.run("freqindex.server.app:app_from_env", factory=True, workers=cfg.workers, **kw)
