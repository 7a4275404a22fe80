"""An OpenAI-compatible model server that answers at once, for ``make bench``'s pipeline at
Bedside's own ceiling (``BENCH_MODEL=instant``).

Each chat completion gets ``n`` schema-valid answers (the recorded answers of
``tests/fakes.py``: an agreeing differential whose citations are the request's own fact
ids, as under vLLM's guided decoding), each with token log-probabilities, and vLLM's usage
block. ``/v1/models`` and ``/health`` answer as vLLM does, and ``/metrics`` gives
``vllm:num_requests_running``, so the benchmark samples it as it does vLLM's.
``GET /bench/own-times`` returns (and forgets) the server's own time per chat completion
since the last call, from reading the request to writing the answer, so the benchmark can
tell the model call's overhead on Bedside's side from the server's own time.

    .venv/bin/python bench/instant_model.py --port 8019 --model NAME
        [--host ADDRESS] [--delay-ms MS]
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes import assessment, choice, cite_facts, completion  # noqa: E402

# Recorded answers by chief complaint (the benchmark's five variants), one per sample
# index: the same top diagnosis, as a stable model gives, citing the complaint's own fact.
# A complaint not listed gets the first. Each passes the answer gate, so every benchmark case
# goes the completed-answer path (parsing, checks, confidence, the encrypted result).
DIAGNOSES = [
    ("chest pain", "Acute myocardial infarction"),
    ("shortness of breath", "Pulmonary embolism"),
    ("cough", "Community-acquired pneumonia"),
    ("headache", "Subarachnoid haemorrhage"),
    ("abdominal pain", "Acute appendicitis"),
]
ANSWERS = {
    complaint: [
        json.dumps(assessment(top, confidence=c, cites=[complaint])) for c in (0.8, 0.7, 0.75)
    ]
    for complaint, top in DIAGNOSES
}
LOGPROBS = [-0.05, -0.2, -0.01, -0.4, -0.1, -0.02]


def _recorded(request: dict[str, Any]) -> list[str]:
    try:
        prompt = str(request["messages"][-1]["content"]).lower()
    except (KeyError, IndexError, TypeError):
        prompt = ""
    complaint = next((c for c, _ in DIAGNOSES if c in prompt), DIAGNOSES[0][0])
    return ANSWERS[complaint]


def answer(request: dict[str, Any], model: str) -> dict[str, Any]:
    n = int(request.get("n") or 1)
    recorded = _recorded(request)
    choices = [
        choice(
            i, recorded[i % len(recorded)], logprobs=LOGPROBS if request.get("logprobs") else None
        )
        for i in range(n)
    ]
    return {**cite_facts(request, completion(choices, model=model)), "model": model}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default 5 resets connections at 32 in flight


def make_server(
    port: int, model: str, host: str = "127.0.0.1", delay_s: float = 0.0
) -> ThreadingHTTPServer:
    running = 0
    lock = threading.Lock()
    own_times: list[float] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, data: bytes, kind: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.endswith("/models"):
                listing = {
                    "object": "list",
                    "data": [{"id": model, "root": "/models/instant", "max_model_len": 32768}],
                }
                self._send(200, json.dumps(listing).encode())
            elif self.path.endswith("/health"):
                self._send(200, b"{}")
            elif self.path.endswith("/bench/own-times"):
                with lock:
                    seconds = list(own_times)
                    own_times.clear()
                self._send(200, json.dumps({"seconds": seconds}).encode())
            elif self.path.endswith("/metrics"):
                text = f'vllm:num_requests_running{{model_name="{model}"}} {running}\n'
                self._send(200, text.encode(), "text/plain")
            else:
                self._send(404, b'{"error": "not found"}')

        def do_POST(self) -> None:
            nonlocal running
            with lock:
                running += 1
            started = time.perf_counter()
            try:
                length = int(self.headers.get("Content-Length") or 0)
                request = json.loads(self.rfile.read(length))
                if delay_s:
                    time.sleep(delay_s)
                self._send(200, json.dumps(answer(request, model)).encode())
            finally:
                with lock:
                    running -= 1
                    own_times.append(time.perf_counter() - started)

    return _Server((host, port), Handler)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", required=True)
    # bench/scale_out.py serves it on its simulated model host's own address.
    parser.add_argument("--host", default="127.0.0.1")
    # A fixed time per completion (default none): bench/scale_out.py --check holds each case
    # at the model a while, so the worker host it removes surely has cases in hand.
    parser.add_argument("--delay-ms", type=int, default=0)
    args = parser.parse_args()
    make_server(args.port, args.model, args.host, args.delay_ms / 1000).serve_forever()


if __name__ == "__main__":
    main()
