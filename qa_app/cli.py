"""The `qa-app` command: load documents, serve the app, ask from the terminal."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click
import uvicorn
from starlette.testclient import TestClient

from qa_app.auth import ROLES, Accounts, TokenFile, UserFile
from qa_app.errors import CollectionMissing, QAError
from qa_app.evaluation import (
    DEFAULT_DEPTH,
    AnswerReport,
    EvalReport,
    evaluate,
    evaluate_answers,
    judged_queries,
    qrels_by_file,
    read_answers,
    read_qrels,
    read_queries,
)
from qa_app.ingest.loader import LoadReport
from qa_app.models import HEADING_SEPARATOR, Passage
from qa_app.reindex import reindex as run_reindex
from qa_app.search.query import parse_query
from qa_app.service import QAService
from qa_app.settings import CHOICES, Settings, load_settings, settings_environment
from qa_app.store import open_store
from qa_app.store.expressions import check_corpus
from qa_app.web import create_app

T = TypeVar("T")


def settings_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Flags shared by every command; each overrides its QA_* variable."""
    options = [
        click.option("--milvus-uri", help="Milvus Lite file or server URI [QA_MILVUS_URI]"),
        click.option("--collection", help="Collection name [QA_COLLECTION]"),
        click.option("--model", help="Embedding model [QA_MODEL]"),
        click.option("--precision", type=click.Choice(CHOICES["precision"]),
                     help="Embedding arithmetic [QA_PRECISION, default auto]"),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def make_settings(**flags: Any) -> Settings:
    try:
        return load_settings(os.environ).replace(**flags)
    except QAError as exc:
        raise click.ClickException(exc.message) from None


def run(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine; domain errors become one line on stderr and a non-zero exit."""
    try:
        return asyncio.run(work())
    except QAError as exc:
        raise click.ClickException(exc.message) from None
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
@click.option("--corpus", default="default", show_default=True,
              help="Corpus to load into (its own partition where the backend has partitions)")
@click.option("--quiet", is_flag=True, help="No progress bars")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON")
@settings_options
def load(paths: tuple[Path, ...], reset: bool, corpus: str, quiet: bool, as_json: bool, **flags: Any) -> None:
    """Load files and folders (.pdf .docx .pptx .xlsx .odt .epub .csv .md .txt .html .rst .jsonl) into
    the collection.

    Re-loading is incremental: unchanged passages are skipped, changed files replaced, and files gone
    from a loaded folder removed. Paged files (PDF) show pages/s and the time left while they are
    read; what a reader noticed (pages without text, OCR) is printed per file at the end.

    \b
    Examples:
        qa-app load docs/
        qa-app load corpus.jsonl --collection scifact
        qa-app load notes/ --reset
        qa-app load ~/papers --corpus papers
    """
    settings = make_settings(**flags)

    async def work() -> LoadReport:
        async with await QAService.open(settings) as service:
            created = await service.ensure_collection(reset=reset)
            if created and not quiet:
                click.echo(f"created collection {settings.collection!r} in {settings.milvus_uri}", err=True)
            if not quiet:
                info = service.model
                path = service.embedding_path
                click.echo(f"embedding with {info.name} ({info.dim}-d, {path.path}: {path.reason})", err=True)
            return await service.load(list(paths), corpus=corpus, show_progress=not quiet)

    report = run(work)
    if as_json:
        click.echo(json.dumps(report.as_dict()))
    else:
        click.echo(format_report(report))
    for path, note in report.notes:
        click.echo(f"note {path}: {note}", err=True)
    for path, reason in report.skipped:
        click.echo(f"skipped {path}: {reason}", err=True)


def format_report(report: LoadReport) -> str:
    rate = report.passages_added / report.seconds if report.seconds else 0.0
    pages = ""
    if report.pages_read:
        pages_rate = report.pages_read / report.read_seconds if report.read_seconds else 0.0
        pages = f"\npages: {report.pages_read} read in {report.read_seconds:.1f} s ({pages_rate:.1f} pages/s)"
    return (
        f"files: {report.files_added} added, {report.files_updated} updated, {report.files_unchanged} unchanged, "
        f"{report.files_removed} removed, {len(report.skipped)} skipped\n"
        f"passages: {report.passages_added} added, {report.passages_removed} removed, "
        f"{report.passages_unchanged} unchanged{pages}\n"
        f"took {report.seconds:.1f} s ({rate:.1f} passages/s, embedding {report.encode_seconds:.1f} s)"
    )


@cli.command()
@click.argument("question")
@click.option("--top-k", type=int, help="Passages to show [QA_TOP_K]")
@click.option("--mode", type=click.Choice(["hybrid", "dense", "sparse"]), default="hybrid")
@click.option("--contains", help="Only passages containing this phrase")
@click.option("--source", help="Only passages whose source path contains this")
@click.option("--title", help="Only passages whose title contains this")
@click.option("--corpus", help="Only these corpora (comma-separated names)")
@click.option("--no-answer", is_flag=True, help="Passages only, no answer")
@click.option("--plain", is_flag=True, help="Readable text instead of JSON lines")
@click.option("--llm-url", help="OpenAI-compatible server for a generated answer [QA_LLM_URL]")
@settings_options
def ask(question: str, top_k: int | None, mode: str, contains: str | None, source: str | None,
        title: str | None, corpus: str | None, no_answer: bool, plain: bool, **flags: Any) -> None:
    """Print the passages that answer QUESTION, then the answer as it is written.

    The answer is generated by the LLM at QA_LLM_URL when one is set, else extracted from the
    passages. Output is JSON lines (one per passage, then one per answer event) unless --plain.

    \b
    Example:
        qa-app ask "how do I cache a function's results?" --plain
    """
    settings = make_settings(**flags)
    text_filter = {k: v for k, v in {"contains": contains, "source": source, "title": title, "corpus": corpus}.items()
                   if v}
    data = {"question": question, "mode": mode, "filter": text_filter, "top_k": top_k or settings.top_k}

    async def work() -> None:
        query = parse_query(data, settings)
        async with await QAService.open(settings) as service:
            result = await service.ask(query)
            for p in result.passages:
                click.echo(format_passage(p) if plain else json.dumps(p.as_dict(), ensure_ascii=False))
            if no_answer:
                return
            async for event in service.stream_answer(query.question, result.passages, query):
                kind, value = event.kind, event.value
                if not plain:
                    click.echo(json.dumps({"event": kind, "data": value}, ensure_ascii=False))
                elif kind == "token":
                    click.echo(value, nl=False)
                elif kind == "error":
                    click.echo(f"\n(the language model failed: {value}; extracting instead)", err=True)
                elif kind == "done":
                    label = {"generated": f"answer by {value['model']}", "extracted": "extracted answer",
                             "no_answer": "no answer"}[value["kind"]]
                    click.echo(("\n\n" if value["kind"] == "generated" else "") + f"== {label} ==\n{value['text']}")

    run(work)


def format_passage(p: Passage) -> str:
    where = HEADING_SEPARATOR.join(p.headings)
    cite = f", {p.page_cite}" + (f" ({p.page_title})" if p.page_title else "") if p.page_cite else ""
    return (f"[{p.rank}] {p.title} {('— ' + where) if where else ''}\n    {p.source}{cite}"
            f" (score {p.score:.4f}, found by {p.found_by})\n    {p.text[:300]}\n")


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
@click.option("--by-file", is_flag=True, help="Judge a PDF passage by its file only: qrels ids FILE#PAGE count as FILE")
@click.option("--answers", "answers_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Gold answers (answers.jsonl: {\"_id\", \"answer\", \"keywords\"}): measure answers, not retrieval")
@click.option("--off-topic", "off_topic_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="With --answers: questions nothing answers (queries.jsonl), for refusal precision and recall")
@click.option("--top-k", type=click.IntRange(1, 50), help="With --answers: passages an answer reads [QA_TOP_K]")
@click.option("--no-generate", is_flag=True, help="With --answers: extracted answers only, even with an LLM")
@click.option("--llm-url", help="With --answers: OpenAI-compatible server for generated answers [QA_LLM_URL]")
@click.option("--per-question", is_flag=True, help="With --answers --json: each question's answer too")
@click.option("--quiet", is_flag=True, help="No progress bar")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON")
@settings_options
def eval_command(queries_path: Path, qrels_path: Path, mode: str, concurrency: int, depth: int, binary: bool, by_file: bool,
                 answers_path: Path | None, off_topic_path: Path | None, top_k: int | None, no_generate: bool,
                 per_question: bool, quiet: bool, as_json: bool, **flags: Any) -> None:
    """Measure retrieval on judged questions: nDCG@10, Recall@10/100, MRR@10, hit@5; or, with
    --answers, the answers: the share that contain the gold keywords (extracted, and generated when an
    LLM is configured), citation precision (cited passages of gold documents), and refusal precision
    and recall on --off-topic questions.

    A passage counts for its document: its doc_id (BEIR JSONL corpora), else its source, which a qrels
    corpus-id names when it is a path suffix (library/functools.html).

    \b
    Examples:
        qa-app eval --queries queries.jsonl --qrels qrels/dev.tsv --mode all --collection scifact
        qa-app eval --queries data/eval/python-docs/queries.jsonl --qrels data/eval/python-docs/qrels.tsv \\
            --answers data/eval/python-docs/answers.jsonl --off-topic data/eval/off-topic/queries.jsonl
    """
    settings = make_settings(**flags)
    try:
        queries, qrels = read_queries(queries_path), read_qrels(qrels_path)
        if by_file:
            qrels = qrels_by_file(qrels)
        answers = read_answers(answers_path) if answers_path else None
        off_topic = read_queries(off_topic_path) if off_topic_path else None
    except QAError as exc:
        raise click.ClickException(exc.message) from None
    if answers is not None:
        if mode == "all":
            raise click.ClickException("--answers measures one mode: pass --mode hybrid, dense or sparse")

        async def answer_work() -> AnswerReport:
            async with await QAService.open(settings) as service:
                return await evaluate_answers(service, queries, answers, qrels, off_topic, generate=not no_generate,
                                              top_k=top_k or settings.top_k, mode=mode, concurrency=concurrency,
                                              show_progress=not quiet)

        answer_report = run(answer_work)
        click.echo(json.dumps(answer_report.as_dict(per_question)) if as_json else answer_report.table())
        return
    if not judged_queries(queries, qrels)[0]:
        raise click.ClickException("no query in the queries file has a relevant judgement in the qrels")
    modes = ["hybrid", "dense", "sparse"] if mode == "all" else [mode]

    async def work() -> EvalReport:
        async with await QAService.open(settings) as service:
            return await evaluate(service, queries, qrels, modes, depth=depth, concurrency=concurrency,
                                  binary=binary, show_progress=not quiet)

    report = run(work)
    click.echo(json.dumps(report.as_dict()) if as_json else report.table())


@cli.command()
@click.option("--host", help="Address to bind [QA_HOST]")
@click.option("--port", type=int, help="Port [QA_PORT]")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Worker processes (needs a Milvus server: an embedded file serves one process)")
@click.option("--llm-url", help="OpenAI-compatible server for generated answers [QA_LLM_URL]")
@click.option("--watch", "watch_paths", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Load this file or folder at start and whenever it changes (repeatable)")
@click.option("--get", "get_path", help="Print the response to one GET of this path and exit (0 if 2xx)")
@click.option("--public", is_flag=True,
              help="Allow a non-loopback --host with authentication off: anyone who reaches the port reads everything")
@click.option("--data-dir", help="Folder of users, tokens and the session key [QA_DATA_DIR]")
@settings_options
def serve(host: str | None, port: int | None, workers: int, watch_paths: tuple[Path, ...], get_path: str | None,
          public: bool, **flags: Any) -> None:
    """Serve the question page and the JSON API.

    Authentication is on as soon as a user or an API token exists (`qa-app users add NAME`,
    `qa-app tokens add NAME`; QA_AUTH=on|off|auto). With it off, serving on an address other than
    loopback is refused unless --public says that is meant.

    \b
    Examples:
        qa-app serve                       # http://127.0.0.1:8000
        qa-app serve --watch ~/notes       # load ~/notes, and again whenever it changes
        qa-app serve --milvus-uri http://milvus:19530 --workers 4 --host 0.0.0.0
        qa-app serve --get '/ask?q=lambda' # smoke test, no server
    """
    settings = make_settings(host=host, port=port, **flags)
    check_exposure(settings, public)
    if get_path:
        with TestClient(create_app(settings)) as client:
            response = client.get(get_path)
        click.echo(response.text)
        sys.exit(0 if response.is_success else 1)
    if workers > 1 and settings.is_embedded:
        raise click.ClickException(
            f"--workers {workers} needs a Milvus server: the embedded file {settings.milvus_uri} can be opened by "
            f"one process only. Serve with one worker, or run a Milvus server and pass --milvus-uri "
            f"http://HOST:19530 (see docs/deploy.md)")
    click.echo(f"serving on http://{settings.host}:{settings.port}  (Ctrl-C to stop)", err=True)
    if workers == 1:
        uvicorn.run(create_app(settings, watch=list(watch_paths)), host=settings.host, port=settings.port,
                    log_level="warning")
        return
    if watch_paths:
        raise click.ClickException("--watch runs in a single worker: run `qa-app load` for the server instead")
    # Each worker builds its app from the environment: hand it these settings there.
    os.environ.update(settings_environment(settings))
    uvicorn.run("qa_app.web:app_from_environment", factory=True, host=settings.host, port=settings.port,
                workers=workers, log_level="warning")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(settings: Settings, public: bool) -> None:
    """Refuse to serve documents to a network with nobody checked at the door; say the state otherwise."""
    accounts = Accounts(settings)
    try:
        enabled, state = accounts.enabled, accounts.describe()
        nobody = not accounts.users.records() and not accounts.tokens.records() and not settings.api_token
    except QAError as exc:
        raise click.ClickException(exc.message) from None
    if enabled and nobody:
        raise click.ClickException(
            f"QA_AUTH=on but there is no user or API token in {settings.data_path}, so nobody could get in. "
            "Add one first: qa-app users add NAME (or qa-app tokens add NAME)")
    if not enabled and not is_loopback(settings.host) and not public:
        raise click.ClickException(
            f"refusing to serve on {settings.host} with authentication off: anyone who can reach this port could "
            "read every loaded document. Add a user (qa-app users add NAME) or an API token (qa-app tokens add "
            "NAME) to turn authentication on, serve on 127.0.0.1, or pass --public if the documents are meant "
            "for everyone on that network")
    click.echo(state + ("; PUBLIC: anyone who reaches the port may read and change everything"
                        if not enabled and not is_loopback(settings.host) else ""), err=True)


def data_settings(data_dir: str | None) -> Settings:
    return make_settings(data_dir=data_dir)


data_dir_option = click.option("--data-dir", help="Folder of users, tokens and the session key [QA_DATA_DIR]")
role_option = click.option("--role", type=click.Choice(ROLES), default="reader", show_default=True,
                           help="reader: ask; editor: also upload, remove and re-load documents")


@cli.group()
def users() -> None:
    """People who sign in on the page (stored with argon2 password hashes in QA_USERS_FILE)."""


@users.command("add")
@click.argument("name")
@role_option
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input")
@click.option("--replace", is_flag=True, help="Set a new password and role for an existing user")
@data_dir_option
def users_add(name: str, role: str, password_stdin: bool, replace: bool, data_dir: str | None) -> None:
    """Add the user NAME; asks for the password twice (or reads it with --password-stdin).

    \b
    Examples:
        qa-app users add alice --role editor
        printf '%s\\n' "$PASSWORD" | qa-app users add bob --password-stdin
    """
    settings = data_settings(data_dir)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt(f"password for {name}", hide_input=True, confirmation_prompt=True)
    try:
        UserFile(settings.users_path).add(name, password, role, replace=replace)
    except QAError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"{'updated' if replace else 'added'} user {name!r} ({role}) in {settings.users_path}")


@users.command("list")
@data_dir_option
def users_list(data_dir: str | None) -> None:
    """List the users: name, role, when added."""
    try:
        for user in UserFile(data_settings(data_dir).users_path).users().values():
            click.echo(f"{user.name}\t{user.role}\t{user.created}")
    except QAError as exc:
        raise click.ClickException(exc.message) from None


@users.command("remove")
@click.argument("name")
@data_dir_option
def users_remove(name: str, data_dir: str | None) -> None:
    """Remove the user NAME; their sessions end at their next request."""
    try:
        UserFile(data_settings(data_dir).users_path).remove(name)
    except QAError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"removed user {name!r}")


@cli.group()
def tokens() -> None:
    """API tokens for `Authorization: Bearer` (only their SHA-256 is stored, in QA_TOKENS_FILE)."""


@tokens.command("add")
@click.argument("name")
@role_option
@click.option("--replace", is_flag=True, help="Issue a new token for an existing name (the old one stops working)")
@data_dir_option
def tokens_add(name: str, role: str, replace: bool, data_dir: str | None) -> None:
    """Make an API token named NAME and print it, once: it cannot be shown again.

    \b
    Example:
        qa-app tokens add ci --role reader
        curl -H "Authorization: Bearer $TOKEN" 'localhost:8000/ask?q=...'
    """
    settings = data_settings(data_dir)
    try:
        token = TokenFile(settings.tokens_path).add(name, role, replace=replace)
    except QAError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"token {name!r} ({role}) stored in {settings.tokens_path}; it is shown only now:", err=True)
    click.echo(token)


@tokens.command("list")
@data_dir_option
def tokens_list(data_dir: str | None) -> None:
    """List the API tokens: name, role, when made (never the token)."""
    try:
        for token in TokenFile(data_settings(data_dir).tokens_path).tokens().values():
            click.echo(f"{token.name}\t{token.role}\t{token.created}")
    except QAError as exc:
        raise click.ClickException(exc.message) from None


@tokens.command("remove")
@click.argument("name")
@data_dir_option
def tokens_remove(name: str, data_dir: str | None) -> None:
    """Remove the API token NAME: it stops working at once."""
    try:
        TokenFile(data_settings(data_dir).tokens_path).remove(name)
    except QAError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"removed token {name!r}")


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--corpus", default="default", show_default=True, help="Corpus the PATHS belong to")
@click.option("--chunk-tokens", type=int, help="Word pieces per passage [QA_CHUNK_TOKENS]")
@click.option("--chunk-overlap", type=int, help="Word pieces of overlap [QA_CHUNK_OVERLAP]")
@click.option("--quiet", is_flag=True, help="No progress bars")
@settings_options
def reindex(paths: tuple[Path, ...], corpus: str, quiet: bool, **flags: Any) -> None:
    """Rebuild the collection with new settings (model, chunking) while the app keeps serving.

    Without PATHS, every file the collection was loaded from is read again, into its own corpus.

    Builds NAME__n+1 beside the live collection, checks it (row count and a probe question), then
    switches the alias NAME to it; running apps follow within seconds. Needs a Milvus server: the
    embedded file has no aliases.

    \b
    Example:
        qa-app reindex --milvus-uri http://localhost:19530 --chunk-tokens 256
    """
    settings = make_settings(**flags)
    report = run(lambda: run_reindex(settings, paths, corpus=corpus, show_progress=not quiet))
    click.echo(f"switched {settings.collection!r} from {report.previous} to {report.built}: "
               f"{report.passages} passages, {report.seconds:.1f} s")


@cli.command()
@settings_options
def corpora(**flags: Any) -> None:
    """List the corpora in the collection with their passage counts."""
    settings = make_settings(**flags)

    async def work() -> dict[str, int]:
        store = open_store(settings)
        try:
            if not await store.exists():
                raise CollectionMissing(f"collection {settings.collection!r} does not exist: load something first")
            await store.check_schema()
            return await store.corpora()
        finally:
            await store.close()

    for name, count in run(work).items():
        click.echo(f"{name}\t{count}")


@cli.command()
@click.option("--corpus", required=True, help="The corpus to remove")
@settings_options
def drop(corpus: str, **flags: Any) -> None:
    """Remove one corpus's passages (and its partition) from the collection."""
    settings = make_settings(**flags)

    async def work() -> int:
        store = open_store(settings)
        try:
            check_corpus(corpus)
            if not await store.exists():
                raise CollectionMissing(f"collection {settings.collection!r} does not exist")
            await store.check_schema()
            if corpus not in await store.corpora():
                raise click.ClickException(f"no corpus {corpus!r} in collection {settings.collection!r}")
            return await store.drop_corpus(corpus)
        finally:
            await store.close()

    click.echo(f"dropped corpus {corpus!r}: {run(work)} passages removed")


def main() -> None:
    cli()
