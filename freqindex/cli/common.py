"""What every command module of the CLI shares: the typer app, error handling (domain errors -> one line and
an exit code), printing, progress, and resolving a command's config from flags and a ``--config`` file."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from freqindex import __version__
from freqindex.config import config_dict, load_config
from freqindex.errors import FreqindexError
from freqindex.storage import access_problem, is_url, parse_storage_options

T = TypeVar("T")

app = typer.Typer(
    name="freqindex",
    help="Pretraining-corpus frequency index: build infini-gram suffix arrays with Spark, then count any "
    "string exactly, list the documents that hold it, and check the index.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

# options that several commands share
IndexDir = Annotated[str, typer.Argument(metavar="DIR", help="Index directory.")]
IndexLocation = Annotated[
    str, typer.Argument(metavar="DIR", help="Index directory or URL (s3://, gs://, hdfs://, abfs://).")
]
CacheDir = Annotated[
    str | None,
    typer.Option(
        "--cache-dir",
        help="Where an index given as a URL is cached locally \\[default: $FREQINDEX_CACHE_DIR, else the user "
        "cache directory, e.g. ~/.cache/freqindex].",
        show_default=False,
    ),
]
StorageOptions = Annotated[
    list[str] | None,
    typer.Option(
        "--storage-option",
        help="KEY=VALUE for the filesystem of a URL (repeatable), e.g. endpoint_url=http://host:9000; "
        "SCHEME.KEY=VALUE applies to one scheme only. Credentials come from the usual environment.",
        show_default=False,
    ),
]
EvalFile = Annotated[
    str, typer.Option("--eval", help="Eval set: .jsonl, .json, .csv or .parquet.", show_default=False)
]
IdField = Annotated[str, typer.Option(help="Item id field (else the row number).")]
Master = Annotated[
    str, typer.Option(help="Spark master: local[*], local[N], spark://HOST:PORT, yarn, k8s://...")
]
JsonOut = Annotated[bool, typer.Option("--json", help="Print a machine-readable result.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print the resolved configuration as JSON and exit.")]


def config_option(section: str, keys: str = "") -> Any:
    """The ``--config FILE`` option of a command whose config has the table ``[section]``."""
    what = (
        keys
        or f"the keys of the command's config (see --dry-run), in a \\[{section}] table or at the top level"
    )
    return Annotated[
        str | None,
        typer.Option(
            "--config", help=f"TOML file: {what}; flags given on the command line win.", show_default=False
        ),
    ]


def handle_errors(fn: Callable) -> Callable:
    """Domain errors -> one red line on stderr and their exit code; Ctrl-C -> 130; storage that cannot be
    used (no credentials, unreachable, access denied) -> one line, exit 2; anything else is a bug: one line
    (exit 3) unless FREQINDEX_DEBUG is set."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except FreqindexError as exc:
            for line, message in getattr(exc, "lines", ()):  # BadLinesError: each bad line of a batch file
                err.print(f"{exc.path}:{line}: {message}", highlight=False, markup=False)
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, markup=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:  # a bug, not a user error: one line unless asked for the traceback
            if os.environ.get("FREQINDEX_DEBUG"):
                raise
            problem = access_problem(exc)
            if problem:  # no credentials, the store unreachable, access denied: the user's to fix
                err.print(f"[bold red]error:[/] {escape(problem)}", highlight=False)
                raise typer.Exit(2) from None
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            err.print(
                f"[bold red]internal error:[/] {type(exc).__name__}: {escape(first)} "
                "(run with FREQINDEX_DEBUG=1 for the traceback)",
                highlight=False,
            )
            raise typer.Exit(3) from None

    return wrapper


def local_index(location: str, cache_dir: str | None, storage_option: list[str] | None) -> str:
    """The local directory of an index given as DIR or URL (a URL is pulled into the verified local cache
    first, see freqindex.remote); messages about the cache go to stderr."""
    if not is_url(location) and not location.startswith("file://"):
        return location
    from freqindex.remote import local_index as local_index_dir  # only now: it imports the build's modules

    return local_index_dir(
        location, cache_dir, parse_storage_options(storage_option), lambda m: err.print(m, highlight=False)
    )


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def note(message: str) -> None:
    """A plain line on stderr (summaries, warnings: stdout stays for results)."""
    err.print(message, highlight=False, markup=False)


def resolve(
    ctx: typer.Context, cls: type[T], *, config: str | None = None, section: str | None = None, **values: Any
) -> T:
    """The command's config: the class's defaults, then the ``config`` file, then the values the user typed.

    ``values`` are keyed by config field. A value whose key is one of the command's parameters counts as
    typed when its source is the command line (or the environment), not a default; a value computed from
    other flags (a key that is no parameter) counts when it is not None or empty."""
    given = {}
    for name, value in values.items():
        source = ctx.get_parameter_source(name)  # None: not a parameter of this command
        if source is None:
            if value not in (None, (), []):
                given[name] = value
        elif source.name != "DEFAULT":  # typer may vendor its own click: compare by name
            given[name] = value
    return load_config(cls, config, section=section, overrides=given)


def fields_of(cls: type, namespace: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``namespace`` (a command function's ``locals()``: its parameters are named after the
    config's fields) that are fields of the config class ``cls``."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in namespace.items() if k in names}


def dry_run_exit(cfg: Any, dry_run: bool) -> None:
    """With ``--dry-run``: print the resolved config as JSON and end the command."""
    if dry_run:
        print_json(config_dict(cfg))
        raise typer.Exit(0)


def progress_bar(enabled: bool = True) -> tuple[Any, Callable[[str, int, int], None]]:
    """A rich progress display on stderr (only on a terminal; otherwise plain lines) and the (description,
    done, total) callback that Spark jobs and long library runs report progress through."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=not (enabled and err.is_terminal),
    )
    tasks: dict[str, int] = {}
    lines = None
    if enabled and not err.is_terminal:  # a log: plain lines instead of a bar
        from freqindex.progress import LineProgress

        lines = LineProgress(lambda m: err.print(m, highlight=False))

    def on_progress(desc: str, done: int, total: int) -> None:
        if lines is not None:
            lines(desc, done, total)
        if desc not in tasks:
            tasks[desc] = progress.add_task(desc, total=total)
        progress.update(tasks[desc], completed=done, total=total)

    return progress, on_progress


def stage_spinner() -> tuple[Any, Callable[[str], None]]:
    """A progress display whose one line names the current stage, and the callback that sets it."""
    progress, _ = progress_bar()
    task = progress.add_task("starting", total=None)
    return progress, lambda stage: progress.update(task, description=stage)


def version_callback(value: bool) -> None:
    if value:
        out.print(f"freqindex {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=version_callback, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    pass
