"""A fake OpenAI-compatible model server for unit tests: real HTTP on loopback, answers
scripted per test. Never used by the end-to-end tests, which talk to real vLLM."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def assessment(
    top: str,
    *,
    confidence: float = 0.7,
    steps: list[str] | None = None,
    cites: list[str] | None = None,
) -> dict[str, Any]:
    """A model's answer. Citations are written as phrases of the case ("chest pain"); the
    fake server, like a model under guided decoding, turns each into the id of the case
    fact that contains it (see ``cite_facts``), and leaves a phrase no fact contains as
    written: an invented citation, which the answer gate must refuse."""
    return {
        "reasoning_steps": steps or [f"The findings point to {top}."],
        "differential": [
            {"diagnosis": top, "likelihood": "high", "supporting_facts": cites or ["chest pain"]},
            {
                "diagnosis": "Pulmonary embolism",
                "likelihood": "low",
                "supporting_facts": ["heart rate"],
            },
        ],
        "next_steps": [{"action": "12-lead ECG", "based_on": cites or ["chest pain"]}],
        "red_flags": [{"flag": "Raised troponin", "based_on": ["Troponin I 2.3 ng/mL"]}],
        "stated_confidence": confidence,
    }


_LISTED_FACT = re.compile(r"^\[(F\d+)\] (.+)$", re.MULTILINE)


def cite_facts(request: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    """Choose, for each phrase an answer cites, the listed case fact containing it, as a
    model does when the schema allows only fact ids. Answers that are not JSON, requests
    without fact ids, and phrases no fact contains are left alone."""
    try:
        allowed = response_enum(request)
        prompt = request["messages"][-1]["content"]
    except (KeyError, IndexError, TypeError):
        return response
    listed = [(fid, text.lower()) for fid, text in _LISTED_FACT.findall(prompt) if fid in allowed]

    def choose(phrase: str) -> str:
        if phrase in allowed:
            return phrase
        return next((fid for fid, text in listed if phrase.lower() in text), phrase)

    choices = []
    for c in response.get("choices", []):
        try:
            answer = json.loads(c["message"]["content"])
            for group, key in (("differential", "supporting_facts"), ("next_steps", "based_on"),
                               ("red_flags", "based_on")):  # fmt: skip
                for item in answer.get(group) or []:
                    item[key] = [choose(p) if isinstance(p, str) else p for p in item[key]]
            c = {**c, "message": {**c["message"], "content": json.dumps(answer)}}
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError):
            pass
        choices.append(c)
    return {**response, "choices": choices}


def response_enum(request: dict[str, Any]) -> list[str]:
    """The fact ids a request's schema allows (KeyError when it allows any text)."""
    schema = request["response_format"]["json_schema"]["schema"]
    return list(schema["$defs"]["FactId"]["enum"])


def choice(
    index: int,
    content: str,
    *,
    finish_reason: str = "stop",
    reasoning: str | None = None,
    reasoning_content: str | None = None,
    logprobs: list[float] | None = None,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if reasoning is not None:
        message["reasoning"] = reasoning
    if reasoning_content is not None:
        message["reasoning_content"] = reasoning_content
    out: dict[str, Any] = {"index": index, "message": message, "finish_reason": finish_reason}
    if logprobs is not None:
        out["logprobs"] = {"content": [{"token": "x", "logprob": lp} for lp in logprobs]}
    return out


def completion(choices: list[dict[str, Any]], model: str = "fake-model") -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "model": model,
        "choices": choices,
        "usage": {"prompt_tokens": 300, "completion_tokens": 150 * len(choices), "total_tokens": 0},
    }


def agreeing_completion(tops: list[str], **kwargs: Any) -> dict[str, Any]:
    return completion([choice(i, json.dumps(assessment(t)), **kwargs) for i, t in enumerate(tops)])


class FakeModelServer:
    """Scripted responses: push (status, body) pairs; the default is a 3-sample agreement."""

    def __init__(self, model: str = "fake-model", *, port: int = 0) -> None:
        self.model = model
        self.root = "/models/fake"  # change it to serve "new weights" under the same name
        self.responses: deque[tuple[int, dict[str, Any]]] = deque()
        self.requests: list[dict[str, Any]] = []
        self.gets: list[str] = []  # paths of GET requests (health checks, model lists)
        # When set, each chat request waits for it: the request stays "in flight".
        self.gate: threading.Event | None = None
        # When true, chat requests are read and the connection closed with no answer, as
        # when the server dies in the middle of a request.
        self.drop_requests = False
        self.delay_s = 0.0  # seconds each answer takes (a model "thinking")
        # A server without guided decoding: citations come back as the answer wrote them.
        self.ignore_enum = False
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                fake.gets.append(self.path)
                if self.path.endswith("/models"):
                    self._send(
                        200,
                        {
                            "object": "list",
                            "data": [{"id": fake.model, "root": fake.root, "max_model_len": 4096}],
                        },
                    )
                elif self.path.endswith("/health"):
                    self._send(200, {})
                else:
                    self._send(404, {"error": "not found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length))
                fake.requests.append(body)
                if fake.gate is not None:
                    fake.gate.wait(timeout=30)
                if fake.delay_s:
                    time.sleep(fake.delay_s)
                if fake.drop_requests:
                    self.close_connection = True
                    return
                if fake.responses:
                    status, response = fake.responses.popleft()
                else:
                    status, response = (
                        200,
                        agreeing_completion(["Acute myocardial infarction"] * body.get("n", 1)),
                    )
                if status == 200 and not fake.ignore_enum:
                    response = cite_facts(body, response)
                response = {**response, "model": fake.model} if status == 200 else response
                self._send(status, response)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def push(self, body: dict[str, Any], status: int = 200) -> None:
        self.responses.append((status, body))

    def start(self) -> FakeModelServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def mcq_choice(index: int, letter: str, *, stated: float = 0.5) -> dict[str, Any]:
    answer = {
        "reasoning_steps": ["Weighing the options."],
        "answer": letter,
        "stated_confidence": stated,
    }
    return choice(index, json.dumps(answer))


def mcq_completion(letters: list[str], *, stated: float = 0.5) -> dict[str, Any]:
    return completion([mcq_choice(i, letter, stated=stated) for i, letter in enumerate(letters)])
