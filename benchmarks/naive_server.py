"""The tutorial way to serve a transformers model, for comparison: a ``pipeline`` in PyTorch
FP32 behind a FastAPI endpoint, answering one request at a time.

    python benchmarks/naive_server.py MODEL_DIR --port 8001
"""

from __future__ import annotations

import argparse
import threading

import torch
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
from transformers import pipeline


class Request(BaseModel):
    texts: list[str]


def build_app(model_dir: str, threads: int) -> FastAPI:
    torch.set_num_threads(threads)
    classify = pipeline("text-classification", model=model_dir, tokenizer=model_dir, device=-1)
    lock = threading.Lock()
    app = FastAPI()

    @app.post("/v1/predict")
    def predict(request: Request) -> dict:
        with lock:
            answers = classify(request.texts, truncation=True, max_length=128)
        return {"model_version": "naive", "predictions": answers}

    @app.get("/ready")
    def ready() -> dict:
        return {"ready": True}

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    uvicorn.run(build_app(args.model_dir, args.threads), port=args.port, log_level="warning")
