"""The real model: under concurrent use (embedding questions while a load counts tokens), and in bf16."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from qa_app.encoders import DenseEncoder, native_bf16, resolve_precision


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


def test_bf16_vectors_point_where_fp32_ones_do(encoder: DenseEncoder) -> None:
    texts = ["How do I cache method calls?", "Vitamin D deficiency and multiple sclerosis risk.",
             "The quick brown fox jumps over the lazy dog. " * 20, "x"]
    fp32 = DenseEncoder(encoder.name, encoder._model, "fp32").encode(texts)
    bf16 = DenseEncoder(encoder.name, encoder._model, "bf16").encode(texts)
    assert bf16.dtype == np.float32 and bf16.shape == fp32.shape
    np.testing.assert_allclose(np.linalg.norm(bf16, axis=1), 1.0, rtol=1e-5)
    cosines = np.sum(fp32 * bf16, axis=1)
    assert cosines.min() > 0.999
    assert not np.array_equal(fp32, bf16)  # bf16 did run: the products were rounded


def test_auto_precision_follows_the_cpu(encoder: DenseEncoder) -> None:
    assert resolve_precision("auto") == ("bf16" if native_bf16() else "fp32")
    assert resolve_precision("fp32") == "fp32"
    assert encoder.info.precision == resolve_precision("auto")
    with pytest.raises(ValueError, match="precision must be one of auto, bf16, fp32"):
        resolve_precision("fp16")
