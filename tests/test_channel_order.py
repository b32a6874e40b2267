"""Channels sorted by range before block quantization (qa_app.embedding.channel_order): exact in fp32,
with the real model, the real exporter and the real onnxruntime."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from qa_app.embedding import channel_order, onnx_int8
from qa_app.embedding.encoder import DenseEncoder

TEXTS = ["How do I cache method calls?", "Vitamin D deficiency and multiple sclerosis risk. " * 12, "x"]


@pytest.fixture(scope="module")
def model() -> Any:
    return DenseEncoder.load("all-MiniLM-L6-v2", "fp32").path.model  # type: ignore[attr-defined]


def run_onnx(path: Path, model: Any, texts: list[str]) -> np.ndarray:
    import onnxruntime as ort  # type: ignore[import-untyped]

    tokenizer = onnx_int8.text_tokenizer(model)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rows = []
    for encoding in tokenizer.encode_batch(texts):
        feed = {"input_ids": np.array([encoding.ids]), "attention_mask": np.array([encoding.attention_mask])}
        rows.append(session.run(None, feed)[0][0])
    return np.array(rows)


def test_the_order_puts_the_widest_channels_first_and_restores(model: Any) -> None:
    transformer = copy.deepcopy(model[0].auto_model).float().eval()
    moved, order = channel_order.sorted_channels(transformer, model.tokenizer, 256)
    layers = len(transformer.encoder.layer)
    assert sorted(order.hidden.tolist()) == list(range(384)) and len(order.feed_forward) == layers
    assert all(sorted(f.tolist()) == list(range(1536)) for f in order.feed_forward)
    assert order.hidden[order.restore()].tolist() == list(range(384))
    # the calibration finds BERT's outlier channels: on another text, the first ones run far wider
    inputs = model.tokenizer(TEXTS[1], return_tensors="pt")
    with torch.no_grad():
        ranges = moved.embeddings(input_ids=inputs["input_ids"]).abs().amax(dim=(0, 1))
    assert ranges[:4].mean() > 3 * ranges.median()


def test_sorted_channels_give_the_same_hidden_states(model: Any) -> None:
    transformer = copy.deepcopy(model[0].auto_model).float().eval()
    moved, order = channel_order.sorted_channels(transformer, model.tokenizer, 256)
    assert not torch.equal(moved.encoder.layer[0].intermediate.dense.weight,
                           transformer.encoder.layer[0].intermediate.dense.weight)
    for text in TEXTS:
        inputs = model.tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            expected = transformer(**inputs).last_hidden_state
            got = moved(**inputs).last_hidden_state[..., torch.as_tensor(order.restore())]
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_a_model_not_laid_out_as_bert_is_not_renumbered() -> None:
    assert not channel_order.renumberable(torch.nn.Linear(4, 4))


def test_a_renumbering_that_changes_the_model_is_refused(model: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    transformer = copy.deepcopy(model[0].auto_model).float().eval()
    real = channel_order.renumbered

    def forgets_a_weight(t: Any, order: channel_order.ChannelOrder) -> Any:
        moved = real(t, order)
        with torch.no_grad():  # as if a layout had a weight this module does not know of
            moved.encoder.layer[0].output.dense.weight.copy_(t.encoder.layer[0].output.dense.weight)
        return moved

    monkeypatch.setattr(channel_order, "renumbered", forgets_a_weight)
    with pytest.raises(channel_order.NotExact, match="change the hidden state"):
        channel_order.sorted_channels(transformer, model.tokenizer, 256)


def test_the_sorted_export_gives_the_unsorted_vectors(model: Any, tmp_path: Path) -> None:
    onnx_int8.export_pooled(model, tmp_path / "plain.onnx")
    onnx_int8.export_pooled(model, tmp_path / "sorted.onnx", sort_channels=True)
    plain, moved = run_onnx(tmp_path / "plain.onnx", model, TEXTS), run_onnx(tmp_path / "sorted.onnx", model, TEXTS)
    np.testing.assert_allclose(moved, plain, atol=2e-6)
    np.testing.assert_allclose(plain, model.encode(TEXTS, normalize_embeddings=True), atol=1e-5)


def test_the_int8_file_of_a_bert_quantizes_sorted_channels_in_coarser_blocks(model: Any, tmp_path: Path) -> None:
    import onnx
    from onnx import helper

    path = onnx_int8.prepare(model, None, tmp_path)
    blocks = {helper.get_attribute_value(a) for node in onnx.load(str(path)).graph.node
              if node.op_type == "MatMulNBits" for a in node.attribute if a.name == "block_size"}
    assert blocks == {onnx_int8.SORTED_BLOCK}
    vectors = run_onnx(path, model, TEXTS)
    reference = model.encode(TEXTS, normalize_embeddings=True)
    assert np.sum(vectors * reference, axis=1).min() > 0.99
