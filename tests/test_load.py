"""`qa-app load`: through the command, incremental, and safe when interrupted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from qa_app.cli import cli
from qa_app.embedding.encoder import DenseEncoder
from qa_app.ingest.loader import LoadReport
from qa_app.settings import Settings
from tests.conftest import Backend, cli_target, load_into, make_pipeline, run


def stored(settings: Settings, encoder: DenseEncoder) -> dict[str, str]:
    """id -> source of every stored passage."""
    async def go() -> dict[str, str]:
        pipeline = make_pipeline(settings, encoder)
        try:
            return {row["id"]: row["source"] async for row in pipeline.store.rows("", ["source"])}
        finally:
            await pipeline.close()
    return run(go())


def test_load_command_reports_and_reloading_adds_nothing(corpus: Path, backend: Backend) -> None:
    target = cli_target(backend.settings("cli"))
    runner = CliRunner()
    first = runner.invoke(cli, ["load", str(corpus), *target, "--quiet"])
    assert first.exit_code == 0, first.output
    assert "files: 5 added, 0 updated, 0 unchanged, 0 removed, 0 skipped" in first.output
    assert "passages: 11 added, 0 removed, 0 unchanged" in first.output
    again = runner.invoke(cli, ["load", str(corpus), *target, "--quiet"])
    assert again.exit_code == 0, again.output
    assert "files: 0 added, 0 updated, 5 unchanged, 0 removed, 0 skipped" in again.output
    assert "passages: 0 added, 0 removed, 11 unchanged" in again.output


def test_load_command_fails_clearly_on_a_missing_path(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["load", str(tmp_path / "nope"), "--milvus-uri", str(tmp_path / "x.db")])
    assert result.exit_code == 1
    assert "Error: no such file or folder:" in result.output and "Traceback" not in result.output


def test_changed_file_is_replaced_and_deleted_file_pruned(corpus: Path, backend: Backend,
                                                          encoder: DenseEncoder) -> None:
    settings = backend.settings("q")
    run(load_into(settings, encoder, corpus))
    before = stored(settings, encoder)
    (corpus / "bread.txt").write_text("Rye bread\n\nRye bread is dense and dark.\n")
    (corpus / "trains.html").unlink()
    report: LoadReport = run(load_into(settings, encoder, corpus))
    after = stored(settings, encoder)
    assert (report.files_updated, report.files_removed, report.files_unchanged) == (1, 1, 3)
    assert not any(s.endswith("trains.html") for s in after.values())
    bread = [i for i, s in after.items() if s.endswith("bread.txt")]
    assert len(bread) == 1 and bread[0] not in before
    unchanged = {i for i, s in before.items() if not s.endswith(("bread.txt", "trains.html"))}
    assert unchanged <= set(after)


def test_binary_and_undecodable_files_are_skipped_not_fatal(corpus: Path, tmp_path: Path, encoder: DenseEncoder) -> None:
    (corpus / "image.txt").write_bytes(b"\x89PNG\x00\x00binary")
    (corpus / "latin.md").write_bytes(b"caf\xe9")
    report = run(load_into(Settings(milvus_uri=str(tmp_path / "q.db")), encoder, corpus))
    assert sorted(Path(p).name for p, _ in report.skipped) == ["image.txt", "latin.md"]
    assert report.files_added == 5


class FailingEncoder:
    """The real encoder, failing after some batches: an interrupted load."""

    def __init__(self, encoder: DenseEncoder, batches: int) -> None:
        self.real, self.left = encoder, batches
        self.info = encoder.info

    def count_tokens(self, text: str) -> int:
        return self.real.count_tokens(text)

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        if self.left == 0:
            raise RuntimeError("simulated crash")
        self.left -= 1
        return self.real.encode(texts, batch_size)


def test_an_interrupted_load_completes_on_the_next_run(corpus: Path, backend: Backend, encoder: DenseEncoder) -> None:
    reference = backend.settings("ref")
    run(load_into(reference, encoder, corpus))
    expected = stored(reference, encoder)

    settings = backend.settings("q", insert_batch=4)

    async def interrupted() -> None:
        pipeline = make_pipeline(settings, encoder)
        try:
            await pipeline.ensure_collection()
            loader = pipeline.loader()
            loader.encoder = FailingEncoder(encoder, batches=1)  # type: ignore[assignment]
            await loader.load([corpus])
        finally:
            await pipeline.close()

    with pytest.raises(RuntimeError, match="simulated crash"):
        run(interrupted())
    partial = stored(settings, encoder)
    assert 0 < len(partial) < len(expected)
    report = run(load_into(settings, encoder, corpus))
    assert stored(settings, encoder) == expected
    assert report.passages_added == len(expected) - len(partial)


def test_reset_rebuilds_and_another_model_is_refused(corpus: Path, backend: Backend) -> None:
    target = cli_target(backend.settings("m"))
    runner = CliRunner()
    assert runner.invoke(cli, ["load", str(corpus / "bread.txt"), *target, "--quiet"]).exit_code == 0
    other = runner.invoke(cli, ["load", str(corpus), *target, "--quiet",
                                "--model", "sentence-transformers/all-MiniLM-L6-v2"])
    assert other.exit_code == 1
    assert "was built with all-MiniLM-L6-v2 (384-d), not sentence-transformers/all-MiniLM-L6-v2" in other.output
    reset = runner.invoke(cli, ["load", str(corpus), *target, "--quiet", "--reset"])
    assert reset.exit_code == 0, reset.output
    assert "files: 5 added" in reset.output
