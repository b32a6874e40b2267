"""The model run by torch, in fp32 or bf16: passages through `SentenceTransformer.encode`, questions
through a traced transformer (packed bf16 linear layers where the CPU multiplies bf16 in hardware)."""

from __future__ import annotations

import contextlib
import logging
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

PAD_MULTIPLE = 8  # question tokens are padded to a multiple of this (see _pad_to_multiple)


class TorchPath:
    """The model's own modules under torch. In bf16 the matrix products run in bfloat16 (layer norms,
    softmax, pooling and the returned vectors stay float32): cosine to the fp32 vectors is above
    0.9999. The path owns the model it is given: bf16 stores its linear weights in bfloat16."""

    def __init__(self, model: Any, precision: str) -> None:
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"torch runs fp32 or bf16, not {precision!r}")
        self.precision = precision
        self.name = f"torch-{precision}"
        self.model = model
        self._question_lock = threading.Lock()  # for the tokenizer: questions may be embedded from several threads
        self._traced: Any = False  # the traced transformer for questions: False until tried, None if it failed
        _set_linear_dtype(model, precision)

    def encode_passages(self, texts: list[str], batch_size: int) -> np.ndarray:
        with self._autocast():
            vectors = self.model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                        convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    def encode_questions(self, texts: list[str]) -> np.ndarray:
        """One forward pass over a few short texts, without `SentenceTransformer.encode`'s sorting and
        batching, through a TorchScript trace of the transformer where the model allows one (less
        time for one question, and the trace runs without holding the GIL, which the event loop
        needs). Safe to call from several threads at once."""
        import torch

        model = self.model
        prompt = model.prompts.get(model.default_prompt_name) if model.default_prompt_name else None
        with self._question_lock:  # the tokenizer is not thread-safe
            features = _pad_to_multiple(model.preprocess(texts, prompt=prompt), PAD_MULTIPLE)
            traced = self._traced_transformer(features)
        with torch.inference_mode(), self._autocast():
            if traced is None:
                features = model.forward(features)
            else:
                features["token_embeddings"] = traced(features["input_ids"], features["attention_mask"])
                for module in list(model)[1:]:  # pooling, normalisation: cheap, and as the model defines them
                    features = module(features)
            embeddings = features["sentence_embedding"].float()
        vectors = torch.nn.functional.normalize(embeddings, dim=1).numpy()
        return np.asarray(vectors, dtype=np.float32)

    def _traced_transformer(self, example: dict[str, Any]) -> Any:
        """The model's transformer traced once on `example` (None where tracing fails or does not apply:
        the eager model then runs). The trace takes input_ids and attention_mask of any shape. In bf16
        its linear layers are packed ones where torch allows (see packed_linear), else plain."""
        if self._traced is not False:
            return self._traced
        self._traced = None
        first = self.model[0]
        if not {"input_ids", "attention_mask"} <= set(example) or not hasattr(first, "model"):
            return None
        for packed in (True, False):
            try:
                self._traced = self._trace(first, example, packed)
            except Exception as exc:  # an unusual model: the eager path is always right
                log.info("questions run on the eager model: tracing failed (%s)", exc)
            if self._traced is not None:
                break
        return self._traced

    def _trace(self, first: Any, example: dict[str, Any], packed: bool) -> Any:
        """A trace of the transformer module `first`, or None if it is not needed or not exact."""
        import torch

        transformer = self._packed_transformer(first.model) if packed else first.model
        if transformer is None:
            return None
        inputs = (example["input_ids"], example["attention_mask"])
        with torch.inference_mode(), self._autocast(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes on Python branches: checked below instead
            traced = torch.jit.trace(_last_hidden_state(transformer), inputs, check_trace=False)
            if not packed:  # frozen, a plain trace runs faster; a packed one does not
                traced = torch.jit.freeze(traced)
            check = first(dict(example))["token_embeddings"].float()
            # Per token, the direction: bf16 kernels that block the rows differently round differently
            # (up to ~0.01 on values near 6), while a wrong trace is far off.
            cosines = torch.nn.functional.cosine_similarity(traced(*inputs).float(), check, dim=-1)
            if not bool(cosines[example["attention_mask"].bool()].min() > 0.9999):
                return None
        return traced

    def _packed_transformer(self, transformer: Any) -> Any:
        """`transformer` with packed bf16 linear layers (see packed_linear), in bf16 only."""
        if self.precision != "bf16":
            return None
        from qa_app.embedding.packed_linear import packed_copy

        return packed_copy(transformer)

    @contextlib.contextmanager
    def _autocast(self) -> Iterator[None]:
        if self.precision != "bf16":
            yield
            return
        import torch

        with torch.autocast("cpu", dtype=torch.bfloat16):  # thread-local: entered on the calling thread
            yield


def _pad_to_multiple(features: dict[str, Any], multiple: int) -> dict[str, Any]:
    """Token tensors padded (masked out) to a length that is a multiple of `multiple`: the results do
    not change, and far fewer distinct shapes reach the model, each of which costs kernel set-up
    the first time it is seen."""
    import torch

    mask = features.get("attention_mask")
    if mask is None or mask.dim() != 2:
        return features
    extra = -mask.shape[1] % multiple
    if extra == 0:
        return features
    padded = dict(features)
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        if key in padded and isinstance(padded[key], torch.Tensor) and padded[key].dim() == 2:
            padded[key] = torch.nn.functional.pad(padded[key], (0, extra), value=0)
    return padded


def _last_hidden_state(transformer: Any) -> Any:
    """`transformer` as a module of (input_ids, attention_mask) returning its last hidden state."""
    import torch

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.transformer(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    return LastHiddenState().eval()


def _set_linear_dtype(model: Any, precision: str) -> None:
    """Keep linear weights in the dtype they are multiplied in. Autocast alone would cast every weight
    to bf16 again on every call: for one short question that costs more than the bf16 product saves."""
    import torch

    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            module.to(dtype)
