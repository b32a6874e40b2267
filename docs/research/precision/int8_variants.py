"""Which MatMuls to keep in fp32 for the int8 quality gate: dense nDCG@10 of each variant against fp32
on the gate's two sets (bench/precision.py's, fp32 document vectors from its cache).

    .venv/bin/python docs/research/precision/int8_variants.py [VARIANT ...]    (about 3 min a variant)

Results and reading: README.md beside this file, "int8 recipes against the gate"."""
import sys, time, json, hashlib, warnings
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
import numpy as np
from bench.common import FULL, Context, CACHE
from bench import precision as P
from qa_app.embedding import onnx_int8 as O
from qa_app.embedding.encoder import DenseEncoder
from qa_app.settings import Settings

WORK = Path('/tmp/int8')
ctx = Context(sizes=FULL, work=WORK / 'work')
ctx.work.mkdir(parents=True, exist_ok=True)
fp32 = DenseEncoder.load(Settings().model, 'fp32')
ctx._encoder = fp32
sets = [P.scifact_set(ctx), P.pydocs_set(ctx)]
model = fp32.path.model if hasattr(fp32.path, 'model') else fp32._model
base = WORK / 'model.onnx'
if not base.exists():
    O.export_pooled(model, base)
import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic
names = [n.name for n in onnx.load(str(base), load_external_data=False).graph.node if n.op_type == 'MatMul']
ffn_out = [n for n in names if '/output/dense/' in n and '/attention/' not in n]
att_out = [n for n in names if '/attention/output/dense/' in n]
def layer(i): return [n for n in names if f'layer.{i}/' in n]
variants = {
    'A_current': ffn_out,
    'B_+attn_out': ffn_out + att_out,
    'C_+layer0': sorted(set(ffn_out + layer(0))),
    'D_+layer5': sorted(set(ffn_out + layer(5))),
    'E_u8u8': ffn_out,
    'F_u8u8_attn': ffn_out + att_out,
    'G_u8u8_all': [],
    'H_ffn_in_only': [n for n in names if '/intermediate/dense/' not in n],
}
only = sys.argv[1:] or list(variants)
fp32_docs = {}
for data in sets:
    text_key = hashlib.sha256(json.dumps(data['texts']).encode()).hexdigest()[:16]
    key = hashlib.sha256(f"{fp32.path_name}|{getattr(fp32.path, 'version', '')}|{fp32.name}|{text_key}".encode()).hexdigest()[:16]
    fp32_docs[data['name']], hit = P.cached(f"{data['name']}-fp32-{key}", lambda: fp32.encode(data['texts'], 32))
    q = fp32.encode_questions(data['questions'])
    data['fp32_q'] = q
    data['fp32_ndcg'] = P.ndcg(P.rank_documents(fp32_docs[data['name']], data['doc_of_row'], q), data['qids'], data['qrels'], data['binary'])
    print(data['name'], 'fp32', round(data['fp32_ndcg'], 4), 'cached' if hit else 'computed', flush=True)
for name in only:
    excl = variants[name]
    out = WORK / f'{name}.onnx'
    if not out.exists():
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            u8 = 'u8u8' in name
            quantize_dynamic(str(base), str(out), weight_type=QuantType.QUInt8 if u8 else QuantType.QInt8,
                             op_types_to_quantize=['MatMul'], per_channel=True, reduce_range=not u8, nodes_to_exclude=excl)
    path = O.OnnxInt8Path(model, out, 2)
    t0 = time.perf_counter()
    res = []
    for data in sets:
        d = path.encode_passages(data['texts'], 32)
        q = path.encode_questions(data['questions'])
        nd = P.ndcg(P.rank_documents(d, data['doc_of_row'], q), data['qids'], data['qrels'], data['binary'])
        cos = float(np.mean(np.sum(d * fp32_docs[data['name']], axis=1)))
        res.append(f"{data['name']} {nd:.4f} (delta {nd - data['fp32_ndcg']:+.4f}, cos {cos:.4f})")
    n = sum(len(s['texts']) for s in sets)
    print(name, f'excluded {len(excl)}', ' | '.join(res), f'{n / (time.perf_counter() - t0):.1f} texts/s', flush=True)
