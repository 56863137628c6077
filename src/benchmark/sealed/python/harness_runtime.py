#!/usr/bin/env python3
"""
auto-harness's Python agent runtime: the Python twin of child.ts, standard library only.

It runs inside the same sandbox as the TypeScript child and speaks the same protocol (protocol.ts) on
the same channel (channel.ts): fd 3, frames of a 4-byte big-endian length and that many bytes of UTF-8
JSON. The harness sends `init` (agent file, model), then `run` messages; every model call and every
benchmark tool goes back to the harness over the same channel (`llm` / `env`), which holds the key,
meters and records them.

The agent file defines `run(task, ctx)`, or a class (`HarnessAgent`, else its only class with a
`run` method) constructed once with no arguments whose instances have `run(self, task, ctx)`:

    task             {"id": str, "input": ...}
    ctx.model        the config's agent_model
    ctx.client       ctx.client.messages.create(model=..., max_tokens=..., messages=[...], ...) -> dict
                     (the Messages API reply as JSON; raises APIError on an error status)
    ctx.env          the benchmark's env: values as attributes/items, tools as callables
                     (example benchmark: ctx.env.execute(tool, input) -> dict, ctx.env.tools)
    ctx.trace.note(message, data=None)
    ctx.cancelled    True once the task was cancelled (timeout, shutdown)

Unmodified SDKs (openai, anthropic, httpx, litellm…) reach the harness too: the runtime serves an endpoint on the
sandbox's loopback and sets OPENAI_BASE_URL, OPENAI_API_BASE, ANTHROPIC_BASE_URL and a placeholder key.

Tasks run in threads, several at a time. `harness_runtime.py --check <agent.py>` only imports the
agent file and checks its shape (the load check).
"""
from __future__ import annotations

import asyncio
import http.server
import importlib.util
import inspect
import json
import os
import queue
import secrets
import socket
import sys
import threading
import time
import traceback
import weakref

# ---------------------------------------------------------------- loading


def load_agent(path: str):
    spec = importlib.util.spec_from_file_location("agent_under_test", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["agent_under_test"] = module
    spec.loader.exec_module(module)
    fn = getattr(module, "run", None)
    if callable(fn) and not inspect.isclass(fn):
        return fn
    chosen = getattr(module, "HarnessAgent", None)
    if not (inspect.isclass(chosen) and callable(getattr(chosen, "run", None))):
        classes = [
            c
            for c in vars(module).values()
            if inspect.isclass(c) and c.__module__ == module.__name__ and callable(getattr(c, "run", None))
        ]
        chosen = classes[0] if len(classes) == 1 else None
    if chosen is None:
        raise TypeError(f"{path}: define run(task, ctx) or a class HarnessAgent with a run(self, task, ctx) method")
    return chosen().run


# ---------------------------------------------------------------- the channel


CHANNEL_FD = 3
MAX_FRAME_BYTES = 64 * 1024 * 1024


class Channel:
    def __init__(self, fd: int):
        self.fd = fd
        self.lock = threading.Lock()

    def send(self, message: dict) -> None:
        body = json.dumps(message, ensure_ascii=False, default=str).encode("utf-8")
        if len(body) > MAX_FRAME_BYTES:
            raise ValueError(f"a message of {len(body)} bytes is over the channel's {MAX_FRAME_BYTES}")
        data = len(body).to_bytes(4, "big") + body
        with self.lock:
            view = memoryview(data)
            while view:
                n = os.write(self.fd, view)
                view = view[n:]

    def _read(self, n: int) -> bytes | None:
        parts, want = [], n
        while want:
            try:
                chunk = os.read(self.fd, min(want, 1 << 20))
            except InterruptedError:
                continue
            if not chunk:
                return None
            parts.append(chunk)
            want -= len(chunk)
        return b"".join(parts)

    def messages(self):
        while True:
            header = self._read(4)
            if header is None:
                return
            body = self._read(int.from_bytes(header, "big"))
            if body is None:
                return
            yield json.loads(body)


class Cancelled(Exception):
    """The task was cancelled by the harness (timeout or shutdown)."""


class APIError(Exception):
    def __init__(self, status: int | None, body, message: str):
        super().__init__(message)
        self.status = status
        self.body = body


class _Pending:
    def __init__(self, job: "Job", listener=None):
        self.job = job
        self.event = threading.Event()
        self.status: int | None = None
        self.headers: dict = {}
        self.chunks: list[str] = []
        self.error: str | None = None
        self.result = None
        # A relayed request's reply is streamed to its client as it comes (the endpoint inside).
        self.listener = listener


class Runtime:
    def __init__(self, channel: Channel):
        self.channel = channel
        self.model = ""
        self.max_retries = 2
        self.agent = None
        self.jobs: dict[str, "Job"] = {}
        self.pending: dict[str, _Pending] = {}
        self.lock = threading.Lock()
        self.next_call = 0

    def call_id(self, prefix: str) -> str:
        with self.lock:
            self.next_call += 1
            return f"{prefix}{self.next_call}"

    # -- harness → child
    def dispatch(self, m: dict) -> None:
        kind = m.get("type")
        if kind == "init":
            self.init(m)
        elif kind == "run":
            threading.Thread(target=self.run_task, args=(m,), daemon=True).start()
        elif kind == "abort":
            job = self.jobs.get(m.get("jobId"))
            if job:
                job.cancel()
        elif kind in ("llm-head", "llm-chunk", "llm-end", "llm-fail", "env-result"):
            p = self.pending.get(m.get("callId"))
            if p is None:
                return
            if p.listener is not None:
                p.listener(m)
                if kind in ("llm-end", "llm-fail"):
                    self.pending.pop(m.get("callId"), None)
                return
            if kind == "llm-head":
                p.status, p.headers = m.get("status"), m.get("headers") or {}
            elif kind == "llm-chunk":
                p.chunks.append(m.get("data", ""))
            elif kind == "llm-end":
                p.event.set()
            elif kind == "llm-fail":
                p.error = str(m.get("message"))
                p.event.set()
            else:
                p.result = m
                p.event.set()

    def init(self, m: dict) -> None:
        self.model = str(m.get("model", ""))
        self.max_retries = int(m.get("maxRetries", 2))
        try:
            self.agent = load_agent(str(m["agentFile"]))
        except BaseException as e:  # the agent's own code: whatever it raised
            self.channel.send({"type": "load-failed", "message": f"cannot load {m.get('agentFile')}: {_describe(e)}"})
            return
        period = max(0.05, int(m.get("heartbeatMs", 1000)) / 1000)

        def beat():
            while True:
                time.sleep(period)
                try:
                    self.channel.send({"type": "hb"})
                except OSError:
                    return

        threading.Thread(target=beat, daemon=True).start()
        self.channel.send({"type": "ready"})

    # -- one task
    def run_task(self, m: dict) -> None:
        job = Job(self, str(m["jobId"]))
        self.jobs[job.id] = job
        _thread_job.job = job
        env = m.get("env") or {}
        ctx = Context(self.model, Client(job), Env(job, env.get("values") or {}, env.get("functions") or []), job)
        try:
            answer = self.agent(m.get("task"), ctx)
            if inspect.iscoroutine(answer):
                answer = asyncio.run(answer)
            outcome = {"ok": True, "answer": answer}
        except BaseException as e:
            outcome = {"ok": False, "error": f"agent threw: {_describe(e)}"}
        _thread_job.job = None
        self.jobs.pop(job.id, None)
        if job.cancelled:
            return
        try:
            self.channel.send({"type": "done", "jobId": job.id, "outcome": outcome})
        except (TypeError, ValueError) as e:
            outcome = {"ok": False, "error": f"the agent's answer cannot be sent: {e}"}
            self.channel.send({"type": "done", "jobId": job.id, "outcome": outcome})


class Job:
    def __init__(self, runtime: Runtime, job_id: str):
        self.runtime = runtime
        self.id = job_id
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        for p in list(self.runtime.pending.values()):
            if p.job is self:
                p.error = "cancelled"
                p.event.set()
                if p.listener is not None:
                    p.listener({"type": "llm-fail", "message": "cancelled"})

    def request(self, prefix: str, message: dict) -> _Pending:
        if self.cancelled:
            raise Cancelled("task cancelled")
        call_id = self.runtime.call_id(prefix)
        p = _Pending(self)
        self.runtime.pending[call_id] = p
        try:
            self.runtime.channel.send({**message, "jobId": self.id, "callId": call_id})
            p.event.wait()
        finally:
            self.runtime.pending.pop(call_id, None)
        if self.cancelled:
            if prefix == "c":
                self.runtime.channel.send({"type": "llm-cancel", "callId": call_id})
            raise Cancelled("task cancelled")
        return p


# ---------------------------------------------------------------- what the agent sees

_RETRYABLE = {408, 409, 429, 500, 502, 503, 504, 529}


class _Messages:
    def __init__(self, job: Job):
        self._job = job

    def create(self, **params) -> dict:
        """POST /v1/messages through the harness; the SDK's retry rule (429, 5xx, broken connections)."""
        body = json.dumps(params)
        headers = {"content-type": "application/json", "anthropic-version": "2023-06-01"}
        attempt = 0
        while True:
            p = self._job.request(
                "c", {"type": "llm", "method": "POST", "path": "/v1/messages", "headers": headers, "body": body}
            )
            text = "".join(p.chunks)
            retry_after = None
            if p.error is not None:
                error = APIError(None, None, f"connection error: {p.error}")
            else:
                try:
                    parsed = json.loads(text) if text else None
                except ValueError:
                    parsed = text
                if p.status is not None and 200 <= p.status < 300:
                    return parsed
                error = APIError(p.status, parsed, f"the Messages API answered {p.status}: {text[:500]}")
                retry_after = (p.headers or {}).get("retry-after")
            if attempt >= self._job.runtime.max_retries or (error.status is not None and error.status not in _RETRYABLE):
                raise error
            attempt += 1
            try:
                delay = float(retry_after) if retry_after else min(8.0, 0.5 * 2 ** (attempt - 1))
            except ValueError:
                delay = 0.5
            time.sleep(min(delay, 60.0))


class Client:
    def __init__(self, job: Job):
        self.messages = _Messages(job)


class Env:
    """The task's env: plain values as attributes (and items), tools as functions run by the harness."""

    def __init__(self, job: Job, values: dict, functions: list):
        self._values = dict(values)
        for name in functions:
            self._values[name] = self._tool(job, str(name))

    @staticmethod
    def _tool(job: Job, name: str):
        def call(*args):
            p = job.request("e", {"type": "env", "name": name, "args": list(args)})
            result = p.result or {}
            if result.get("ok"):
                return result.get("value")
            raise RuntimeError(str(result.get("error", "env call failed")))

        call.__name__ = name
        return call

    def __getattr__(self, name: str):
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str):
        return self._values[name]

    def __contains__(self, name: str) -> bool:
        return name in self._values


class Trace:
    def __init__(self, job: Job):
        self._job = job

    def note(self, message, data=None) -> None:
        msg = {"type": "note", "jobId": self._job.id, "message": str(message)}
        if data is not None:
            msg["data"] = data
        self._job.runtime.channel.send(msg)


class Context:
    def __init__(self, model: str, client: Client, env: Env, job: Job):
        self.model = model
        self.client = client
        self.env = env
        self.trace = Trace(job)
        self._job = job

    @property
    def cancelled(self) -> bool:
        return self._job.cancelled


# ---------------------------------------------------------------- the endpoint inside the sandbox
# inside_endpoint.py, joined in here when the runtime is published (runtime-dir.ts): the sandbox sees one file.
# @inside-endpoint


def _describe(e: BaseException) -> str:
    return "".join(traceback.format_exception(type(e), e, e.__traceback__)).strip()[-4000:]


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--check":
        try:
            load_agent(argv[1])
        except BaseException as e:
            print(f"{argv[1]} does not load: {_describe(e)}", file=sys.stderr)
            return 1
        return 0
    try:
        os.fstat(CHANNEL_FD)
    except OSError:
        print("harness_runtime.py is started by auto-harness (no channel on fd 3)", file=sys.stderr)
        return 2
    runtime = Runtime(Channel(CHANNEL_FD))
    start_endpoint(runtime, "--sealed" in argv)
    for message in runtime.channel.messages():
        if isinstance(message, dict):
            runtime.dispatch(message)
    # The harness went away: nothing left to do.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
