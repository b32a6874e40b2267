"""Channels of like range side by side: a BERT's hidden and feed-forward channels sorted by how large
their activations run, before the model is quantized in blocks of channels.

A block-scaled int8 product (qa_app.embedding.onnx_int8) quantizes each token's input in blocks of
consecutive channels, one scale a block, set by the block's largest value. BERT's hidden state has a few
outlier channels (here one runs to ~30 where the median channel stays under 3): each costs the other
channels of its block most of their resolution. Renumbering the channels is exact in fp32 (LayerNorm,
residual sums and mean pooling treat channels alike; each weight's rows and columns move with them), so
the channels are sorted by their range, measured on a few paragraphs of this project's own prose
(`calibration.txt`), and the exported graph puts the embedding's channels back in their order at the end.
Sorted, blocks of 64 are as close to fp32 as unsorted blocks of 32 (cosine 0.9996) and faster
(docs/research/precision: "Channels sorted by range").

Only the layout of BERT-family models (bert, and others built as BertModel is) is renumbered; the caller
quantizes other models unsorted, in finer blocks. A renumbered model that does not give the original's
hidden states on a calibration text is refused (NotExact): the int8 export then fails and the path
chooser falls back to another path.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

CALIBRATION_FILE = Path(__file__).with_name("calibration.txt")
EXACT = 1e-4  # largest difference between the renumbered model's hidden states and the original's


@dataclass(frozen=True)
class ChannelOrder:
    """New position -> old channel, for the hidden state and for each layer's feed-forward channels."""

    hidden: np.ndarray
    feed_forward: tuple[np.ndarray, ...]

    def restore(self) -> np.ndarray:
        """Index that puts renumbered hidden channels back in the model's own order."""
        return np.argsort(self.hidden)


def calibration_texts() -> list[str]:
    return [p.strip() for p in CALIBRATION_FILE.read_text(encoding="utf-8").split("\n\n") if p.strip()]


def renumberable(transformer: Any) -> bool:
    """True where `transformer` (a Hugging Face model) is laid out as BertModel is."""
    try:
        embeddings, layers = transformer.embeddings, list(transformer.encoder.layer)
        parts = [embeddings.word_embeddings, embeddings.LayerNorm]
        for layer in layers:
            parts += [layer.attention.self.query, layer.attention.self.key, layer.attention.self.value,
                      layer.attention.output.dense, layer.attention.output.LayerNorm, layer.intermediate.dense,
                      layer.output.dense, layer.output.LayerNorm]
    except AttributeError:
        return False
    return bool(layers) and all(part is not None for part in parts)


def _layer_norms(transformer: Any) -> list[Any]:
    """The LayerNorms whose outputs are the hidden state fed to the next weights."""
    norms = [transformer.embeddings.LayerNorm]
    for layer in transformer.encoder.layer:
        norms += [layer.attention.output.LayerNorm, layer.output.LayerNorm]
    return norms


def measured_order(transformer: Any, tokenizer: Any, texts: list[str], max_length: int) -> ChannelOrder:
    """Channels sorted by their largest |activation| over `texts`, largest first: the hidden state's over
    every LayerNorm output, each layer's feed-forward over its activation (GELU) output."""
    import torch

    hidden: list[torch.Tensor] = []
    feed_forward: dict[int, torch.Tensor] = {}

    def largest(output: Any) -> torch.Tensor:
        x = output[0] if isinstance(output, tuple) else output
        return x.detach().float().abs().reshape(-1, x.shape[-1]).amax(0)

    def on_norm(_module: Any, _inputs: Any, output: Any) -> None:
        hidden.append(largest(output))

    def on_feed_forward(index: int) -> Any:
        def hook(_module: Any, _inputs: Any, output: Any) -> None:
            m = largest(output)
            feed_forward[index] = torch.maximum(feed_forward[index], m) if index in feed_forward else m
        return hook

    hooks = [norm.register_forward_hook(on_norm) for norm in _layer_norms(transformer)]
    hooks += [layer.intermediate.register_forward_hook(on_feed_forward(i))
              for i, layer in enumerate(transformer.encoder.layer)]
    try:
        with torch.no_grad():
            for text in texts:
                inputs = tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt")
                transformer(**inputs)
    finally:
        for hook in hooks:
            hook.remove()
    hidden_range = torch.stack(hidden).amax(0).numpy()
    return ChannelOrder(
        hidden=np.argsort(-hidden_range, kind="stable"),
        feed_forward=tuple(np.argsort(-feed_forward[i].numpy(), kind="stable")
                           for i in range(len(transformer.encoder.layer))))


def renumbered(transformer: Any, order: ChannelOrder) -> Any:
    """A copy of `transformer` whose channel i is the original's channel order.hidden[i] (and so for
    each layer's feed-forward channels): every weight's rows and columns moved to match."""
    import torch

    model = copy.deepcopy(transformer)
    h = torch.as_tensor(order.hidden)

    def take(tensor: torch.Tensor, index: torch.Tensor, dim: int) -> None:
        tensor.copy_(tensor.index_select(dim, index))

    with torch.no_grad():
        e = model.embeddings
        for table in (e.word_embeddings, getattr(e, "position_embeddings", None),
                      getattr(e, "token_type_embeddings", None)):
            if table is not None:
                take(table.weight, h, 1)
        for norm in _layer_norms(model):
            take(norm.weight, h, 0)
            take(norm.bias, h, 0)
        for layer, ff in zip(model.encoder.layer, order.feed_forward, strict=True):
            f = torch.as_tensor(ff)
            for reads_hidden in (layer.attention.self.query, layer.attention.self.key, layer.attention.self.value):
                take(reads_hidden.weight, h, 1)
            for writes_hidden in (layer.attention.output.dense, layer.output.dense):
                take(writes_hidden.weight, h, 0)
                take(writes_hidden.bias, h, 0)
            take(layer.intermediate.dense.weight, f, 0)
            take(layer.intermediate.dense.bias, f, 0)
            take(layer.intermediate.dense.weight, h, 1)
            take(layer.output.dense.weight, f, 1)
        pooler = getattr(model, "pooler", None)
        if pooler is not None and getattr(pooler, "dense", None) is not None:
            take(pooler.dense.weight, h, 1)
    return model


class NotExact(Exception):
    """The renumbered model's hidden states differ from the original's: its layout is not BertModel's."""


def sorted_channels(transformer: Any, tokenizer: Any, max_length: int) -> tuple[Any, ChannelOrder]:
    """A copy of `transformer` (a BERT-layout model, see renumberable) with its channels sorted by their
    range on the calibration texts, and the order; NotExact unless the copy gives the original's
    hidden states (renumbered) on a calibration text."""
    import torch

    texts = calibration_texts()
    order = measured_order(transformer, tokenizer, texts, max_length)
    moved_model = renumbered(transformer, order)
    inputs = tokenizer(texts[0], truncation=True, max_length=max_length, return_tensors="pt")
    with torch.no_grad():
        original = transformer(**inputs).last_hidden_state
        moved = moved_model(**inputs).last_hidden_state[..., torch.as_tensor(order.restore())]
    difference = float((original - moved).abs().max())
    if difference > EXACT:
        raise NotExact(f"renumbered channels change the hidden state by {difference:.2g}")
    return moved_model, order
