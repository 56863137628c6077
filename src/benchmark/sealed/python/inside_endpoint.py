"""
The model endpoint inside the sandbox, for the Python runtime (harness_runtime.py, into which it is joined when
the runtime is published: the sandbox sees one file). Standard library only.
"""
# This file is not a module of its own: it runs inside harness_runtime.py, whose names (Job, Runtime, _Pending,
# json, os, queue, secrets, socket, sys, threading, weakref, http.server) it uses.
#
# Unmodified SDKs (openai, anthropic, httpx, litellm…) find the harness by base URL on the sandbox's own
# loopback. Several tasks share the process, and a request does not say whose it is: each connection is
# traced to the thread that opened it (the task's thread, or a thread it started), and every reply closes its
# connection, so a client pooled across tasks opens a new one from the right thread for each request.

_thread_job = threading.local()
_connections: "weakref.WeakKeyDictionary[socket.socket, Job]" = weakref.WeakKeyDictionary()
_endpoint_port = 0
_DROPPED = {"authorization", "x-api-key", "api-key", "host", "connection", "keep-alive", "content-length", "transfer-encoding"}

_thread_start = threading.Thread.start
_thread_bootstrap = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]


def _start(self, *args, **kwargs):
    self._auto_harness_job = getattr(_thread_job, "job", None)
    return _thread_start(self, *args, **kwargs)


def _bootstrap_inner(self):
    _thread_job.job = getattr(self, "_auto_harness_job", None)
    return _thread_bootstrap(self)


def _audit(event, args):
    if event != "socket.connect" or not _endpoint_port:
        return
    address = args[1]
    job = getattr(_thread_job, "job", None)
    if job is not None and isinstance(address, tuple) and len(address) >= 2 and address[1] == _endpoint_port:
        try:
            _connections[args[0]] = job
        except TypeError:
            pass


def _job_of(runtime: "Runtime", peer_port: int):
    for sock, job in list(_connections.items()):
        try:
            if sock.getsockname()[1] == peer_port:
                return job if job.id in runtime.jobs else None
        except OSError:
            continue
    running = list(runtime.jobs.values())
    return running[0] if len(running) == 1 else None


class _Endpoint(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    runtime: "Runtime | None" = None
    token = ""

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def _error(self, status: int, message: str) -> None:
        body = json.dumps({"type": "error", "error": {"type": "invalid_request_error", "message": message}}).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.send_header("connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> str | None:
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            data = b"".join(parts)
        else:
            data = self.rfile.read(int(self.headers.get("content-length") or 0))
        return data.decode("utf-8", "replace") if data else None

    def _serve(self) -> None:
        runtime = self.runtime
        auth = self.headers.get("authorization") or ""
        key = auth[7:] if auth.lower().startswith("bearer ") else (self.headers.get("x-api-key") or self.headers.get("api-key"))
        body = self._body()
        if key != self.token:
            return self._error(401, "the key is the harness's placeholder in the environment (OPENAI_API_KEY, ANTHROPIC_API_KEY)")
        job = _job_of(runtime, self.client_address[1])
        if job is None:
            return self._error(400, "the harness cannot tell which task made this call: make model calls from the task's own thread or one it started")
        headers = {k.lower(): v for k, v in self.headers.items() if k.lower() not in _DROPPED}
        replies: queue.Queue = queue.Queue()
        call_id = runtime.call_id("c")
        runtime.pending[call_id] = _Pending(job, listener=replies.put)
        message = {"type": "llm", "jobId": job.id, "callId": call_id, "method": self.command, "path": self.path}
        runtime.channel.send({**message, "headers": headers, "body": body})
        self.close_connection = True
        try:
            self._relay(replies)
        except OSError:
            # The client hung up: the harness stops paying for a reply nobody reads.
            if runtime.pending.pop(call_id, None) is not None:
                runtime.channel.send({"type": "llm-cancel", "callId": call_id})

    def _relay(self, replies: "queue.Queue") -> None:
        while True:
            m = replies.get()
            kind = m.get("type")
            if kind == "llm-head":
                self.send_response(int(m.get("status") or 502))
                for name, value in (m.get("headers") or {}).items():
                    self.send_header(name, value)
                self.send_header("transfer-encoding", "chunked")
                self.send_header("connection", "close")
                self.end_headers()
            elif kind == "llm-chunk":
                data = str(m.get("data", "")).encode("utf-8")
                if data:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    self.wfile.flush()
            elif kind == "llm-end":
                self.wfile.write(b"0\r\n\r\n")
                return
            else:
                # A reply that broke off reaches the client as a broken connection (no last chunk), as it would.
                return

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve


def start_endpoint(runtime: "Runtime", sealed: bool) -> None:
    """Serves the endpoint on the sandbox's loopback and points the SDKs' variables at it.

    Sealed, the loopback is this process's alone: the same port and placeholder key in every run. Unsealed it is
    the host's, so a free port and a key of its own keep other local users out."""
    global _endpoint_port
    threading.Thread.start = _start
    threading.Thread._bootstrap_inner = _bootstrap_inner  # type: ignore[attr-defined]
    sys.addaudithook(_audit)
    _Endpoint.runtime = runtime
    _Endpoint.token = "harness-placeholder-key" if sealed else f"harness-{secrets.token_hex(16)}"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 8780 if sealed else 0), _Endpoint)
    server.daemon_threads = True
    _endpoint_port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{_endpoint_port}"
    os.environ.update(
        {
            "OPENAI_BASE_URL": f"{url}/v1",
            "OPENAI_API_BASE": f"{url}/v1",
            "ANTHROPIC_BASE_URL": url,
            "OPENAI_API_KEY": _Endpoint.token,
            "ANTHROPIC_API_KEY": _Endpoint.token,
        }
    )


