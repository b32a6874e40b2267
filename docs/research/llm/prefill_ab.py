"""Prefill A/B of two llama-cpp-python builds (e.g. the portable AVX2 wheel vs a -DGGML_NATIVE=ON one):
run with each build's python, alternating; prints one JSON line per run.

    PY -m ... not needed:  BUILD_PY docs/research/llm/prefill_ab.py MODEL.gguf LABEL [N_PASSAGES]
"""

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parent))
import cases  # noqa: E402
import llama_cpp  # noqa: E402

model, label = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 3
llm = llama_cpp.Llama(model_path=model, n_ctx=4096, n_threads=2, n_threads_batch=2, verbose=False)
msgs = cases.messages(cases.TIMING["question"], cases.TIMING["passages"][:n], "both")
load = [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
t0 = time.perf_counter()
out = llm.create_chat_completion(messages=msgs, max_tokens=1, temperature=0.0)
dt = time.perf_counter() - t0
print(json.dumps({"kind": "prefill_ab", "label": label, "llama_cpp": llama_cpp.__version__,
                  "system_info": llama_cpp.llama_print_system_info().decode(),
                  "prompt_tokens": out["usage"]["prompt_tokens"], "prefill_s": round(dt, 2),
                  "prefill_tokens_per_s": round(out["usage"]["prompt_tokens"] / dt, 1), "load_before": load,
                  "at": time.strftime("%Y-%m-%dT%H:%M:%S")}), flush=True)
