"""`demo-corpus`: a small generated corpus in every input format."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import app, handle_errors, out, print_json


@app.command("demo-corpus")
@handle_errors
def demo_corpus_cli(
    out_dir: Annotated[str, typer.Argument(metavar="DIR", help="Where to write the corpus.")] = "demo/corpus",
    captions: Annotated[int, typer.Option(help="Number of image captions (TSV).")] = 20_000,
    articles: Annotated[
        int, typer.Option(help="Number of articles (.jsonl, .jsonl.gz, .jsonl.zst).")
    ] = 3_000,
    seed: Annotated[int, typer.Option(help="Random seed (the corpus is deterministic).")] = 0,
    json_out: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print what was written as JSON: dir, files, documents, planted_bad_records, planted_leaks.",
        ),
    ] = False,
) -> None:
    """Write a small generated corpus in every input format, with a few planted bad records.

    Example: freqindex demo-corpus demo/corpus && freqindex build demo/corpus -o demo/index
    """
    from freqindex.demo import write_demo_corpus

    info = write_demo_corpus(out_dir, captions, articles, seed)
    if json_out:
        print_json(info)
        return
    out.print(
        f"wrote {info['documents']:,} documents (+{info['planted_bad_records']} planted bad records) to "
        f"{info['dir']}: {', '.join(info['files'])}",
        highlight=False,
    )
