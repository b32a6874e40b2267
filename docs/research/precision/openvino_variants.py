"""OpenVINO int8 variants against the int8 quality gate: dense nDCG@10 on the gate's two sets
(bench/precision.py's) and the document vectors' cosine to fp32 (fp32 vectors from the bench cache).

    .venv/bin/python docs/research/precision/openvino_variants.py [GROUP ...]       (about 3 min a variant)
    ONEDNN_MAX_CPU_ISA=AVX2_VNNI .venv/bin/python docs/research/precision/openvino_variants.py 32   (a laptop's kernels)

GROUP is OpenVINO's DYNAMIC_QUANTIZATION_GROUP_SIZE (input channels per activation scale; 0: weights-only,
products in fp32); a suffix `:ffn` keeps the feed-forward output projections in fp32, as the ONNX Runtime
recipe does. The model is the app's (qa_app.embedding.openvino_int8.int8_weights). Results and reading:
README.md beside this file, "OpenVINO: activation scales per token and channel group"."""
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
import numpy as np

from bench import precision as P
from bench.common import FULL, Context
from qa_app.embedding import onnx_int8, openvino_int8
from qa_app.embedding.encoder import DenseEncoder
from qa_app.settings import Settings

work = Path(tempfile.mkdtemp(prefix="ov_variants_"))
ctx = Context(sizes=FULL, work=work)
fp32 = DenseEncoder.load(Settings().model, "fp32")
ctx._encoder = fp32
model = fp32._model
sets = [P.scifact_set(ctx), P.pydocs_set(ctx)]
for data in sets:
    text_key = hashlib.sha256(json.dumps(data["texts"]).encode()).hexdigest()[:16]
    key = hashlib.sha256(f"{fp32.path_name}|{getattr(fp32.path, 'version', '')}|{fp32.name}|{text_key}".encode()).hexdigest()[:16]
    data["fp32_docs"], _ = P.cached(f"{data['name']}-fp32-{key}", lambda d=data: fp32.encode(d["texts"], 32))
    data["fp32_ndcg"] = P.ndcg(P.rank_documents(data["fp32_docs"], data["doc_of_row"], fp32.encode_questions(data["questions"])),
                               data["qids"], data["qrels"], data["binary"])
    print(data["name"], "fp32", round(data["fp32_ndcg"], 4), flush=True)

base = work / "model.onnx"
onnx_int8.export_pooled(model, base)
isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "native")
for spec in sys.argv[1:] or ["32"]:
    group, _, keep = spec.partition(":")
    made = work / f"int8-{keep or 'all'}.onnx"
    if not made.exists():
        if keep == "ffn":  # the feed-forward output projections stay fp32: drop them from the converted set
            import onnx
            graph = onnx.load(str(base))
            kept = {n.input[1] for n in graph.graph.node if n.op_type == "MatMul" and "/output/dense/" in n.name
                    and "/attention/" not in n.name}
            for init in graph.graph.initializer:
                if init.name in kept:
                    init.name = init.name + "_fp32"
            for node in graph.graph.node:
                node.input[:] = [i + "_fp32" if i in kept else i for i in node.input]
            onnx.save(graph, str(work / "ffn.onnx"))
            openvino_int8.int8_weights(work / "ffn.onnx", made)
        else:
            openvino_int8.int8_weights(base, made)
    openvino_int8.GROUP_SIZE = int(group)  # read by the path's compile options
    path = openvino_int8.OpenVinoInt8Path(model, made, threads=2)
    started, results = time.perf_counter(), []
    for data in sets:
        docs = path.encode_passages(data["texts"], 32)
        nd = P.ndcg(P.rank_documents(docs, data["doc_of_row"], path.encode_questions(data["questions"])),
                    data["qids"], data["qrels"], data["binary"])
        cos = np.sum(docs * data["fp32_docs"], axis=1)
        results.append(f"{data['name']} {nd:.4f} (delta {nd - data['fp32_ndcg']:+.4f}, cosine mean {cos.mean():.4f}, "
                       f"min {cos.min():.4f})")
    texts = sum(len(d["texts"]) for d in sets)
    print(f"group {spec} [{isa}]", " | ".join(results), f"{texts / (time.perf_counter() - started):.1f} texts/s", flush=True)
