"""The `qa-app` command: load documents, serve the app, ask from the terminal."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import uvicorn
from starlette.testclient import TestClient

from qa_app.config import Settings, SettingsError, load_settings
from qa_app.encoders import ModelNotFound
from qa_app.errors import QAError
from qa_app.evaluation import (DEFAULT_DEPTH, EvalInputError, EvalReport, evaluate, judged_queries, read_qrels,
                               read_queries)
from qa_app.ingest import LoadError, LoadReport
from qa_app.pipeline import Pipeline, parse_query
from qa_app.web import create_app

T = TypeVar("T")


def settings_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Flags shared by every command; each overrides its QA_* variable."""
    options = [
        click.option("--milvus-uri", help="Milvus Lite file or server URI [QA_MILVUS_URI]"),
        click.option("--collection", help="Collection name [QA_COLLECTION]"),
        click.option("--model", help="Embedding model [QA_MODEL]"),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def make_settings(**flags: Any) -> Settings:
    try:
        return load_settings(os.environ).replace(**flags)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def run(work: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine; domain errors become one line on stderr and a non-zero exit."""
    try:
        return asyncio.run(work())
    except (QAError, LoadError, ModelNotFound) as exc:
        raise click.ClickException(getattr(exc, "message", str(exc))) from None
    except KeyboardInterrupt:
        click.echo("interrupted: nothing is half-written; run the same command again to finish", err=True)
        sys.exit(130)


@click.group()
@click.version_option(package_name="qa_app")
def cli() -> None:
    """Ask questions of your own documents, answered by hybrid search on Milvus."""


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--reset", is_flag=True, help="Drop the collection and build it again")
@click.option("--chunk-tokens", type=int, help="Word pieces per passage [QA_CHUNK_TOKENS]")
@click.option("--chunk-overlap", type=int, help="Word pieces of overlap [QA_CHUNK_OVERLAP]")
@click.option("--quiet", is_flag=True, help="No progress bars")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON")
@settings_options
def load(paths: tuple[Path, ...], reset: bool, quiet: bool, as_json: bool, **flags: Any) -> None:
    """Load files and folders (.md .txt .html .rst .jsonl) into the collection.

    Re-loading is incremental: unchanged passages are skipped, changed files replaced, and files gone
    from a loaded folder removed.

    \b
    Examples:
        qa-app load docs/
        qa-app load corpus.jsonl --collection scifact
        qa-app load notes/ --reset
    """
    settings = make_settings(**flags)

    async def work() -> LoadReport:
        pipeline = await Pipeline.open(settings)
        try:
            created = await pipeline.ensure_collection(reset=reset)
            if created and not quiet:
                click.echo(f"created collection {settings.collection!r} in {settings.milvus_uri}", err=True)
            return await pipeline.loader(show_progress=not quiet).load(paths)
        finally:
            await pipeline.close()

    report = run(work)
    if as_json:
        click.echo(json.dumps(report.as_dict()))
    else:
        click.echo(format_report(report))
    for path, reason in report.skipped:
        click.echo(f"skipped {path}: {reason}", err=True)


def format_report(report: LoadReport) -> str:
    rate = report.passages_added / report.seconds if report.seconds else 0.0
    return (
        f"files: {report.files_added} added, {report.files_updated} updated, {report.files_unchanged} unchanged, "
        f"{report.files_removed} removed, {len(report.skipped)} skipped\n"
        f"passages: {report.passages_added} added, {report.passages_removed} removed, "
        f"{report.passages_unchanged} unchanged\n"
        f"took {report.seconds:.1f} s ({rate:.1f} passages/s, embedding {report.encode_seconds:.1f} s)"
    )


@cli.command()
@click.argument("question")
@click.option("--top-k", type=int, help="Passages to show [QA_TOP_K]")
@click.option("--mode", type=click.Choice(["hybrid", "dense", "sparse"]), default="hybrid")
@click.option("--contains", help="Only passages containing this phrase")
@click.option("--source", help="Only passages whose source path contains this")
@click.option("--title", help="Only passages whose title contains this")
@click.option("--plain", is_flag=True, help="Readable text instead of JSON lines")
@settings_options
def ask(question: str, top_k: int | None, mode: str, contains: str | None, source: str | None,
        title: str | None, plain: bool, **flags: Any) -> None:
    """Print the passages that answer QUESTION, one JSON object a line.

    \b
    Example:
        qa-app ask "how do I cache a function's results?" --plain
    """
    settings = make_settings(**flags)
    text_filter = {k: v for k, v in {"contains": contains, "source": source, "title": title}.items() if v}
    data = {"question": question, "mode": mode, "filter": text_filter, "top_k": top_k or settings.top_k}

    async def work() -> Any:
        pipeline = await Pipeline.open(settings)
        try:
            return await pipeline.ask(parse_query(data, settings))
        finally:
            await pipeline.close()

    result = run(work)
    for p in result.passages:
        if plain:
            where = " › ".join(p.headings)
            click.echo(f"[{p.rank}] {p.title} {('— ' + where) if where else ''}\n    {p.source}"
                       f" (score {p.score:.4f}, found by {p.found_by})\n    {p.text[:300]}\n")
        else:
            click.echo(json.dumps(p.as_dict(), ensure_ascii=False))


@cli.command("eval")
@click.option("--queries", "queries_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="BEIR queries.jsonl: {\"_id\", \"text\"} a line")
@click.option("--qrels", "qrels_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Judgements TSV: query-id, corpus-id, score (header line first)")
@click.option("--mode", type=click.Choice(["hybrid", "dense", "sparse", "all"]), default="hybrid", show_default=True)
@click.option("--concurrency", type=click.IntRange(1, 256), default=8, show_default=True,
              help="Questions in flight at once")
@click.option("--depth", type=click.IntRange(1, 16384), default=DEFAULT_DEPTH, show_default=True,
              help="Passages fetched per question (documents are ranked by their best passage)")
@click.option("--binary", is_flag=True, help="Count every relevant document as grade 1 (default: graded gains)")
@click.option("--quiet", is_flag=True, help="No progress bar")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON")
@settings_options
def eval_command(queries_path: Path, qrels_path: Path, mode: str, concurrency: int, depth: int, binary: bool,
                 quiet: bool, as_json: bool, **flags: Any) -> None:
    """Measure retrieval on judged questions: nDCG@10, Recall@10/100, MRR@10, hit@5.

    A passage counts for its document: its doc_id (BEIR JSONL corpora), else its source, which a qrels
    corpus-id names when it is a path suffix (library/functools.html).

    \b
    Example:
        qa-app eval --queries queries.jsonl --qrels qrels/dev.tsv --mode all --collection scifact
    """
    settings = make_settings(**flags)
    try:
        queries, qrels = read_queries(queries_path), read_qrels(qrels_path)
    except EvalInputError as exc:
        raise click.ClickException(str(exc)) from None
    if not judged_queries(queries, qrels)[0]:
        raise click.ClickException("no query in the queries file has a relevant judgement in the qrels")
    modes = ["hybrid", "dense", "sparse"] if mode == "all" else [mode]

    async def work() -> EvalReport:
        pipeline = await Pipeline.open(settings)
        try:
            return await evaluate(pipeline, queries, qrels, modes, depth=depth, concurrency=concurrency,
                                  binary=binary, show_progress=not quiet)
        finally:
            await pipeline.close()

    report = run(work)
    click.echo(json.dumps(report.as_dict()) if as_json else report.table())


@cli.command()
@click.option("--host", help="Address to bind [QA_HOST]")
@click.option("--port", type=int, help="Port [QA_PORT]")
@click.option("--get", "get_path", help="Print the response to one GET of this path and exit (0 if 2xx)")
@settings_options
def serve(host: str | None, port: int | None, get_path: str | None, **flags: Any) -> None:
    """Serve the question page and the JSON API.

    \b
    Examples:
        qa-app serve                       # http://127.0.0.1:8000
        qa-app serve --get '/ask?q=lambda' # smoke test, no server
    """
    settings = make_settings(host=host, port=port, **flags)
    app = create_app(settings)
    if get_path:
        with TestClient(app) as client:
            response = client.get(get_path)
        click.echo(response.text)
        sys.exit(0 if response.is_success else 1)
    click.echo(f"serving on http://{settings.host}:{settings.port}  (Ctrl-C to stop)", err=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")


def main() -> None:
    cli()
