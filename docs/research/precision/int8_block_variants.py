"""int8 recipes with finer scales than quantize_dynamic's, against the gate (dense nDCG@10 within 0.005 of
fp32 on SciFact dev and the Python-docs dev set, bench/precision.py's sets and fp32 cache):

    .venv/bin/python docs/research/precision/int8_block_variants.py [VARIANT ...]   (3-7 min a variant)

Variants (names as in README.md beside this file, "Scales per block"):
  S50_A        SmoothQuant (alpha 0.5, calibrated on this repository's own docs) + the shipped-before recipe A
  S50_A_u8     the same with 8-bit asymmetric (u8) weights
  PTS50_A_u8   SmoothQuant + activation scales per token (a graph of ONNX ops) + u8 weights, FFN output fp32
  NB8_b32 / NB8_b64 / NB8_b128   MatMulNBits, 8-bit weights in blocks of 32/64/128, accuracy_level 4
                (b32 was the shipped recipe until channels were sorted)
  SNB8_b32 / SNB8_b64 / SNB8_b128   the same after the model's channels are sorted by range
                (qa_app.embedding.channel_order; SNB8_b64 is what onnx_int8.prepare makes, the shipped recipe)
"""
import hashlib, json, re, sys, time, warnings
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from bench.common import FULL, Context
from bench import precision as P
from qa_app.embedding import onnx_int8 as O
from qa_app.embedding.encoder import DenseEncoder
from qa_app.settings import Settings



def activation_ranges(src: Path, encodings: list, inputs: list[str]) -> dict[str, np.ndarray]:
    import onnxruntime as ort
    model = onnx.load(str(src))
    have = {o.name for o in model.graph.output}
    for name in inputs:
        if name not in have:
            model.graph.output.append(helper.make_empty_tensor_value_info(name))
    opts = ort.SessionOptions(); opts.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    maxima = {name: None for name in inputs}
    for e in encodings:
        ids = np.array([e.ids], dtype=np.int64); mask = np.array([e.attention_mask], dtype=np.int64)
        outs = session.run(inputs, {"input_ids": ids, "attention_mask": mask})
        for name, value in zip(inputs, outs):
            m = np.abs(value.reshape(-1, value.shape[-1])).max(axis=0)
            maxima[name] = m if maxima[name] is None else np.maximum(maxima[name], m)
    return maxima


def smooth(src: Path, dst: Path, encodings: list, alpha: float = 0.5) -> int:
    model = onnx.load(str(src))
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    consumers: dict[str, list] = {}
    for node in graph.node:
        if node.op_type == "MatMul" and node.input[1] in inits and numpy_helper.to_array(inits[node.input[1]]).ndim == 2:
            consumers.setdefault(node.input[0], []).append(node)
    ranges = activation_ranges(src, encodings, list(consumers))
    new_inits, muls = [], {}
    for x, nodes in consumers.items():
        weights = [numpy_helper.to_array(inits[n.input[1]]).astype(np.float32) for n in nodes]
        wmax = np.max([np.abs(w).max(axis=1) for w in weights], axis=0)
        amax = np.maximum(ranges[x], 1e-5)
        s = (amax ** alpha / np.maximum(wmax, 1e-5) ** (1 - alpha)).astype(np.float32)
        s = np.clip(s, 1e-4, 1e4)
        inv = numpy_helper.from_array((1.0 / s).astype(np.float32), x + "_smooth_inv")
        new_inits.append(inv)
        muls[x] = helper.make_node("Mul", [x, inv.name], [x + "_smoothed"], name=x + "_smooth")
        for n, w in zip(nodes, weights):
            scaled = numpy_helper.from_array((w * s[:, None]).astype(np.float32), n.input[1] + "_smoothed")
            new_inits.append(scaled)
            n.input[0] = x + "_smoothed"
            n.input[1] = scaled.name
    nodes = []
    producers = {o: n for n in graph.node for o in n.output}
    pending = dict(muls)
    for node in graph.node:
        # a Mul right after the node that makes its input (or first, for a graph input)
        nodes.append(node)
        for o in node.output:
            if o in pending:
                nodes.append(pending.pop(o))
    nodes = list(pending.values()) + nodes
    del graph.node[:]
    graph.node.extend(nodes)
    used = {i for n in graph.node for i in n.input}
    keep = [i for i in list(graph.initializer) + new_inits if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return len(consumers)




def per_token(src: Path, dst: Path, exclude=(), qmax: int = 63, u8_weights: bool = False) -> int:
    model = onnx.load(str(src))
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    new_nodes = []
    quantized_inputs: dict[str, tuple[str, str]] = {}
    count = 0
    extra_inits = []
    one27 = "pt_c127"
    extra_inits.append(numpy_helper.from_array(np.array(127.0, np.float32), one27))
    eps = "pt_eps"
    extra_inits.append(numpy_helper.from_array(np.array(1e-12, np.float32), eps))
    c128 = "pt_c128"
    extra_inits.append(numpy_helper.from_array(np.array(128.0, np.float32), c128))
    zp = "pt_zp128"
    extra_inits.append(numpy_helper.from_array(np.array(128, np.uint8), zp))
    wzp = "pt_wzp0"
    extra_inits.append(numpy_helper.from_array(np.array(0, np.int8), wzp))
    for node in graph.node:
        if node.op_type != "MatMul" or node.input[1] not in inits or node.name in exclude:
            new_nodes.append(node)
            continue
        w = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
        if w.ndim != 2:
            new_nodes.append(node)
            continue
        count += 1
        x = node.input[0]
        if x not in quantized_inputs:
            p = f"pt_{len(quantized_inputs)}"
            new_nodes += [
                helper.make_node("Abs", [x], [p + "_abs"]),
                helper.make_node("ReduceMax", [p + "_abs"], [p + "_max"], axes=[-1], keepdims=1),
                helper.make_node("Div", [p + "_max", one27], [p + "_s0"]),
                helper.make_node("Max", [p + "_s0", eps], [p + "_s"]),
                helper.make_node("Div", [x, p + "_s"], [p + "_xs"]),
                helper.make_node("Round", [p + "_xs"], [p + "_xr"]),
                helper.make_node("Add", [p + "_xr", c128], [p + "_xo"]),
                helper.make_node("Cast", [p + "_xo"], [p + "_q"], to=TensorProto.UINT8),
            ]
            quantized_inputs[x] = (p + "_q", p + "_s")
        xq, xs = quantized_inputs[x]
        wn = node.input[1] + "_q"
        sn = node.input[1] + "_scale"
        if u8_weights:
            lo, hi = np.minimum(w.min(axis=0), 0), np.maximum(w.max(axis=0), 0)
            scale = ((hi - lo) / 255).astype(np.float32)
            scale = np.where(scale == 0, 1.0, scale).astype(np.float32)
            zpw = np.clip(np.round(-lo / scale), 0, 255).astype(np.uint8)
            wq = np.clip(np.round(w / scale) + zpw, 0, 255).astype(np.uint8)
            zn = node.input[1] + "_zp"
            extra_inits += [numpy_helper.from_array(wq, wn), numpy_helper.from_array(scale, sn), numpy_helper.from_array(zpw, zn)]
            wzp_name = zn
        else:
            scale = np.abs(w).max(axis=0) / qmax
            scale = np.where(scale == 0, 1.0, scale).astype(np.float32)
            wq = np.clip(np.round(w / scale), -qmax, qmax).astype(np.int8)
            extra_inits += [numpy_helper.from_array(wq, wn), numpy_helper.from_array(scale, sn)]
            wzp_name = wzp
        out = node.output[0]
        m = f"mm_{count}"
        new_nodes += [
            helper.make_node("MatMulInteger", [xq, wn, zp, wzp_name], [m + "_i"]),
            helper.make_node("Cast", [m + "_i"], [m + "_f"], to=TensorProto.FLOAT),
            helper.make_node("Mul", [m + "_f", xs], [m + "_fx"]),
            helper.make_node("Mul", [m + "_fx", sn], [out]),
        ]
    used = {i for n in new_nodes for i in n.input}
    keep = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep + [i for i in extra_inits if i.name in used])
    del graph.node[:]
    graph.node.extend(new_nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return count



WORK = Path('/tmp/int8')
ROOT = Path(__file__).resolve().parents[3]


def calibration_texts() -> list[str]:
    """Paragraphs of this repository's own Markdown (not the dev sets): SmoothQuant's activation ranges."""
    paras = []
    for p in [ROOT / 'README.md'] + sorted((ROOT / 'docs').rglob('*.md')):
        for para in re.split(r'\n\s*\n', p.read_text()):
            para = ' '.join(para.split())
            if len(para) > 200 and not para.startswith('|'):
                paras.append(para)
    return paras


def make(name: str, base: Path, model, out: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    names = [n.name for n in onnx.load(str(base), load_external_data=False).graph.node if n.op_type == 'MatMul']
    ffn_out = [n for n in names if '/output/dense/' in n and '/attention/' not in n]
    if name.startswith('NB8_b'):
        O.block_int8(base, out, int(name[5:]))
        return
    if name.startswith('SNB8_b'):
        sorted_base = WORK / 'model-sorted.onnx'
        if not sorted_base.exists():
            O.export_pooled(model, sorted_base, sort_channels=True)
        O.block_int8(sorted_base, out, int(name[6:]))
        return
    smoothed = WORK / 'smooth50.onnx'
    if not smoothed.exists():
        smooth(base, smoothed, O.text_tokenizer(model).encode_batch(calibration_texts()), 0.5)
    if name == 'PTS50_A_u8':
        per_token(smoothed, out, set(ffn_out), 63, u8_weights=True)
        return
    u8 = name.endswith('_u8')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        quantize_dynamic(str(smoothed), str(out), weight_type=QuantType.QUInt8 if u8 else QuantType.QInt8,
                         op_types_to_quantize=['MatMul'], per_channel=True, reduce_range=not u8, nodes_to_exclude=ffn_out)


def main() -> None:
    WORK.mkdir(exist_ok=True)
    ctx = Context(sizes=FULL, work=WORK / 'work')
    ctx.work.mkdir(parents=True, exist_ok=True)
    fp32 = DenseEncoder.load(Settings().model, 'fp32')
    ctx._encoder = fp32
    sets = [P.scifact_set(ctx), P.pydocs_set(ctx)]
    model = fp32.path.model
    base = WORK / 'model.onnx'
    if not base.exists():
        O.export_pooled(model, base)
    fp32_docs = {}
    for data in sets:
        text_key = hashlib.sha256(json.dumps(data['texts']).encode()).hexdigest()[:16]
        key = hashlib.sha256(f"{fp32.path_name}|{getattr(fp32.path, 'version', '')}|{fp32.name}|{text_key}".encode()).hexdigest()[:16]
        fp32_docs[data['name']], _ = P.cached(f"{data['name']}-fp32-{key}", lambda: fp32.encode(data['texts'], 32))
        q = fp32.encode_questions(data['questions'])
        data['fp32_ndcg'] = P.ndcg(P.rank_documents(fp32_docs[data['name']], data['doc_of_row'], q), data['qids'], data['qrels'], data['binary'])
        print(data['name'], 'fp32', round(data['fp32_ndcg'], 4), flush=True)
    for name in sys.argv[1:] or ['S50_A', 'S50_A_u8', 'PTS50_A_u8', 'NB8_b32', 'NB8_b64', 'NB8_b128',
                                   'SNB8_b32', 'SNB8_b64', 'SNB8_b128']:
        out = WORK / f'{name}.onnx'
        if not out.exists():
            make(name, base, model, out)
        path = O.OnnxInt8Path(model, out, 2)
        t0 = time.perf_counter()
        res = []
        for data in sets:
            d = path.encode_passages(data['texts'], 32)
            q = path.encode_questions(data['questions'])
            nd = P.ndcg(P.rank_documents(d, data['doc_of_row'], q), data['qids'], data['qrels'], data['binary'])
            cos = np.sum(d * fp32_docs[data['name']], axis=1)
            res.append(f"{data['name']} {nd:.4f} (delta {nd - data['fp32_ndcg']:+.4f}, cos {cos.mean():.5f})")
        n = sum(len(s['texts']) for s in sets)
        print(name, ' | '.join(res), f'{n / (time.perf_counter() - t0):.1f} texts/s', flush=True)


if __name__ == '__main__':
    main()
