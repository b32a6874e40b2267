"""The raw-encode floor in a fresh process (as `qa-app load` is one): load the app's model, warm it up,
then time one `SentenceTransformer.encode()` over a JSON list of texts on a worker thread (the loader's
calls run on one too), in the precision the app uses (QA_PRECISION, auto by default: bf16 on a CPU
with bf16 matrix instructions). Prints {"seconds": ..., "precision": ...}."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
warnings.filterwarnings("ignore")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=Path, required=True)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    from qa_app.config import load_settings
    from qa_app.encoders import DenseEncoder

    texts = json.loads(args.texts.read_text())
    settings = load_settings(os.environ)
    encoder = DenseEncoder.load(settings.model, settings.precision)
    pool = ThreadPoolExecutor(1)

    def encode(items: list[str]) -> float:
        started = time.perf_counter()
        encoder.encode(items, args.batch)  # SentenceTransformer.encode inside the precision's autocast
        return time.perf_counter() - started

    pool.submit(encode, texts[:64]).result()  # warm-up
    seconds = pool.submit(encode, texts).result()
    print(json.dumps({"seconds": seconds, "n": len(texts), "precision": encoder.precision}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
