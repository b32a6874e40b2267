"""The raw-encode floor in a fresh process (as `qa-app load` is one): load the app's model, warm it up,
then time one `DenseEncoder.encode()` over a JSON list of texts on a worker thread (the loader's
calls run on one too), on the path the app chooses (QA_PRECISION, auto by default: the start-up
self-test's choice). Prints {"seconds": ..., "precision": ..., "path": ...}."""

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
    from qa_app.embedding.encoder import DenseEncoder
    from qa_app.settings import load_settings

    texts = json.loads(args.texts.read_text())
    settings = load_settings(os.environ)
    encoder = DenseEncoder.load(settings.model, settings.precision)
    pool = ThreadPoolExecutor(1)

    def encode(items: list[str]) -> float:
        started = time.perf_counter()
        encoder.encode(items, args.batch)  # the chosen path's passage encoding
        return time.perf_counter() - started

    pool.submit(encode, texts[:64]).result()  # warm-up
    seconds = pool.submit(encode, texts).result()
    print(json.dumps({"seconds": seconds, "n": len(texts), "precision": encoder.precision, "path": encoder.path_name}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
