"""The real model under concurrent use: embedding questions while a load counts tokens."""

from __future__ import annotations

import threading
import time

from qa_app.encoders import DenseEncoder


def test_counting_tokens_while_embedding_in_other_threads_breaks_nothing(encoder: DenseEncoder) -> None:
    errors: list[BaseException] = []
    texts = [("word " * n).strip() for n in (3, 9, 14, 2, 30, 300)]
    deadline = time.monotonic() + 6

    def embed() -> None:
        try:
            while time.monotonic() < deadline:
                assert encoder.encode(texts * 3, batch_size=32).shape == (18, 384)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def count() -> None:
        try:
            while time.monotonic() < deadline:
                assert [encoder.count_tokens(t) for t in texts] == [3, 9, 14, 2, 30, 300]
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=f) for f in (embed, count, count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
