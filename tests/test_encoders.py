"""The real model: under concurrent use (embedding questions while a load counts tokens), and in bf16."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from qa_app.embedding.cpu import cpu_info, native_bf16, resolve_precision
from qa_app.embedding.encoder import DenseEncoder
from qa_app.embedding.question_batcher import QueryBatcher, question_threads


def test_counting_tokens_while_embedding_in_other_threads_breaks_nothing(encoder: DenseEncoder) -> None:
    errors: list[BaseException] = []
    texts = [("word " * n).strip() for n in (3, 9, 14, 2, 30, 300)]
    deadline = time.monotonic() + 6

    def embed() -> None:
        try:
            while time.monotonic() < deadline:
                assert encoder.encode(texts * 3, batch_size=32).shape == (18, 384)
        except BaseException as exc:
            errors.append(exc)

    def count() -> None:
        try:
            while time.monotonic() < deadline:
                assert [encoder.count_tokens(t) for t in texts] == [3, 9, 14, 2, 30, 300]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=f) for f in (embed, count, count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_token_counts_are_the_tokenizers_own_without_truncation(encoder: DenseEncoder) -> None:
    import copy

    tokenizer = copy.deepcopy(encoder._model.tokenizer)
    texts = ["", "x", "naïve 東京 café", "def f(x):\n    return x ** 2  # square", "word " * 700,
             "Vitamin D deficiency (<20 ng/mL) and multiple sclerosis: a meta-analysis."]
    for text in texts:
        expected = len(tokenizer(text, add_special_tokens=False, truncation=False)["input_ids"])
        assert encoder.count_tokens(text) == expected, text
    assert encoder.count_tokens("word " * 700) == 700  # far past the model's window: counted, not cut


def test_bf16_vectors_point_where_fp32_ones_do() -> None:
    texts = ["How do I cache method calls?", "Vitamin D deficiency and multiple sclerosis risk.",
             "The quick brown fox jumps over the lazy dog. " * 20, "x"]
    fp32 = DenseEncoder.load("all-MiniLM-L6-v2", "fp32").encode(texts)
    bf16 = DenseEncoder.load("all-MiniLM-L6-v2", "bf16").encode(texts)
    assert bf16.dtype == np.float32 and bf16.shape == fp32.shape
    np.testing.assert_allclose(np.linalg.norm(bf16, axis=1), 1.0, rtol=1e-5)
    cosines = np.sum(fp32 * bf16, axis=1)
    assert cosines.min() > 0.999
    assert not np.array_equal(fp32, bf16)  # bf16 did run: the products were rounded


def test_auto_precision_follows_the_cpu(encoder: DenseEncoder) -> None:
    assert resolve_precision("auto") == ("bf16" if cpu_info().amx else "int8")  # tried first; the self-test decides
    assert resolve_precision("fp32") == "fp32"
    assert encoder.info.precision == encoder.path.precision in ("fp32", "bf16", "int8")
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, bf16, int8"):
        resolve_precision("fp16")


def test_questions_embed_as_passages_do_and_in_any_batch(encoder: DenseEncoder) -> None:
    questions = ["How do I cache method calls?", "what is a generator", "Vitamin D and multiple sclerosis",
                 "x", "How do I read a file line by line in Python without loading all of it?"]
    reference = encoder.encode(questions)
    together = encoder.encode_questions(questions)
    one_by_one = np.concatenate([encoder.encode_questions([q]) for q in questions])
    assert np.sum(reference * together, axis=1).min() > 0.9999
    assert np.sum(reference * one_by_one, axis=1).min() > 0.9999
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, rtol=1e-5)


def test_question_threads_use_one_core_each_and_leave_torch_as_it_was() -> None:
    import torch

    default = torch.get_num_threads()
    pool = question_threads(2)
    try:
        assert set(pool.map(lambda _: torch.get_num_threads(), range(8))) == {1}
        seen: list[int] = []
        later = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
        later.start()
        later.join()
        assert seen == [default] and torch.get_num_threads() == default
    finally:
        pool.shutdown()


def test_the_batcher_answers_every_question_with_its_own_vector(encoder: DenseEncoder) -> None:
    questions = [f"question number {i} about {topic}" for i, topic in enumerate(["files", "sets", "caching"] * 12)]
    reference = encoder.encode_questions(questions)

    async def ask_all() -> tuple[list[np.ndarray], QueryBatcher]:
        batcher = QueryBatcher(encoder, max_batch=8, threads=2)
        try:
            return list(await asyncio.gather(*(batcher.encode(q) for q in questions))), batcher
        finally:
            batcher.close()

    vectors, batcher = asyncio.run(ask_all())
    assert np.sum(np.stack(vectors) * reference, axis=1).min() > 0.9999
    assert batcher.questions == len(questions) and 1 < batcher.calls < len(questions)  # shared model calls


def test_a_failing_model_call_fails_every_question_in_its_batch(encoder: DenseEncoder,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(texts: list[str]) -> np.ndarray:
        raise RuntimeError("model exploded")

    monkeypatch.setattr(encoder, "encode_questions", explode)

    async def ask_all() -> list[BaseException | np.ndarray]:
        batcher = QueryBatcher(encoder, threads=1)
        try:
            return await asyncio.gather(*(batcher.encode(f"q{i}") for i in range(5)), return_exceptions=True)
        finally:
            batcher.close()

    results = asyncio.run(ask_all())
    assert all(isinstance(r, RuntimeError) and "model exploded" in str(r) for r in results)


def test_a_packed_copy_computes_what_the_model_does_and_shares_its_other_tensors() -> None:
    import torch

    from qa_app.embedding.packed_linear import PackedLinear, packed_copy

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(384, 1536), torch.nn.GELU(), torch.nn.LayerNorm(1536),
                                torch.nn.Linear(1536, 384)).to(torch.bfloat16).eval()
    packed = packed_copy(model)
    if packed is None:
        pytest.skip("this build of torch cannot pack linear layers")
    assert isinstance(packed[0], PackedLinear) and isinstance(model[0], torch.nn.Linear)
    assert packed[2].weight is model[2].weight and packed[0].bias is model[0].bias
    for shape in [(1, 16, 384), (3, 40, 384), (64, 384)]:
        x = torch.randn(*shape)
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            torch.testing.assert_close(packed(x).float(), model(x).float(), atol=1e-2, rtol=1e-2)


@pytest.mark.skipif(not native_bf16(), reason="packed layers are used in bf16, which runs in hardware only where the CPU has it")
def test_bf16_questions_run_through_packed_linear_layers() -> None:
    encoder = DenseEncoder.load("all-MiniLM-L6-v2", "bf16")
    assert encoder.path_name == "torch-bf16"
    encoder.encode_questions(["How do I cache method calls?"])
    graph = str(encoder.path._traced.inlined_graph)  # type: ignore[attr-defined]
    assert "mkldnn::_linear_pointwise" in graph and "aten::linear" not in graph
