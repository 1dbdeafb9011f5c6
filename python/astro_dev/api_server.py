"""A loopback fake of the Open Notify API for tests and benchmarks (no test may reach the internet).

The server listens on 127.0.0.1 only, on a free port chosen by the kernel, answers each request on
its own thread, and stops itself: on `stop()`, at the end of a `with` block, or at the latest after
`lifetime` seconds (so a forgotten server never outlives a test run).

Replies are scripted per path (the query string is ignored for matching, but logged). Each path
has a FIFO queue of `Reply` objects; a request takes the next one. When a path's queue is empty,
the path's handler (`set_handler`: a function of the request, for an API that reads its query or
body) or its default reply (`set_default`) answers, else the server-wide default (given to the
constructor; by default a 404 with a JSON body).

    from astro_dev.api_server import ApiServer, Reply, astros_reply

    with ApiServer() as api:
        api.set_default("/astros.json", astros_reply([("ISS", "Ann"), ("ISS", "Bob")]))
        api.enqueue("/astros.json", Reply(status=503), Reply(status=503))  # two failures first
        url = api.url("/astros.json")             # http://127.0.0.1:PORT/astros.json
        ...                                         # run the client against url
        assert api.count("/astros.json") == 3

Fault knobs of a `Reply` (combine freely):
    status, headers, body    the answer; Content-Length is always sent (the real length of `body`)
    content_type             Content-Type header (default application/json)
    delay                    seconds to wait before sending anything (a slow server / timeout)
    truncate_to              send only this many bytes of `body` although Content-Length announces
                             all of it, then close (or hold open, see below): an interrupted body
    hold_open                after sending, keep the connection open this many seconds before
                             closing (with truncate_to: a body cut short on a live connection)
Waits end early when the server stops, so `stop()` never hangs on a sleeping handler.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import socket
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import typing
from typing import Iterable

__all__ = [
    "ApiServer",
    "Reply",
    "RequestRecord",
    "astros_body",
    "astros_reply",
    "json_reply",
]


@dataclasses.dataclass
class Reply:
    """One scripted HTTP answer. See the module docstring for the fault knobs."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    content_type: str = "application/json"
    delay: float = 0.0
    truncate_to: int | None = None
    hold_open: float = 0.0


@dataclasses.dataclass(frozen=True)
class RequestRecord:
    """One request the server received (in arrival order in `ApiServer.requests`)."""

    method: str
    path: str  # without the query string
    target: str  # the full request target, query string included
    headers: dict[str, str]
    body: bytes = b""

    def param(self, name: str) -> str | None:
        """The first value of query parameter `name`, decoded."""
        query = urllib.parse.urlsplit(self.target).query
        values = urllib.parse.parse_qs(query, keep_blank_values=True).get(name)
        return values[0] if values else None


def astros_body(people: Iterable[tuple[str, str]], message: str = "success") -> bytes:
    """The normal Open Notify body for a list of (craft, name) pairs, UTF-8 JSON bytes.

    `ensure_ascii=False` so non-ASCII names travel as raw UTF-8, like a real server may send them.
    """
    people = [{"craft": craft, "name": name} for craft, name in people]
    doc = {"people": people, "number": len(people), "message": message}
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


def json_reply(obj: object, status: int = 200, **knobs) -> Reply:
    """A Reply whose body is `obj` serialised as JSON (UTF-8); extra knobs go to Reply."""
    return Reply(status=status, body=json.dumps(obj, ensure_ascii=False).encode("utf-8"), **knobs)


def astros_reply(people: Iterable[tuple[str, str]], **knobs) -> Reply:
    """A 200 Reply carrying the Open Notify body for (craft, name) pairs; knobs go to Reply."""
    return Reply(status=200, body=astros_body(people), **knobs)


_NOT_FOUND = Reply(status=404, body=b'{"message": "not found"}')


class ApiServer:
    """Threaded loopback HTTP server with scripted replies per path. Use as a context manager."""

    def __init__(self, default: Reply | None = None, lifetime: float = 900.0):
        self._lock = threading.Lock()
        self._queues: dict[str, collections.deque[Reply]] = collections.defaultdict(collections.deque)
        self._defaults: dict[str, Reply] = {}
        self._handlers: dict[str, typing.Callable[[RequestRecord], Reply]] = {}
        self._default = default or _NOT_FOUND
        self._counts: collections.Counter[str] = collections.Counter()
        self._requests: list[RequestRecord] = []
        self._stopping = threading.Event()
        self._lifetime = lifetime
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "ApiServer":
        server = self

        class Handler(_Handler):
            api = server

        httpd = _Server(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="api-server", daemon=True)
        self._thread.start()
        self._timer = threading.Timer(self._lifetime, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        """Stop serving; idempotent. Sleeping handlers (delay, hold_open) wake up and close."""
        self._stopping.set()
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._timer is not None:
            self._timer.cancel()

    def __enter__(self) -> "ApiServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:PORT (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "/astros.json") -> str:
        """The absolute URL of `path` on this server."""
        if not path.startswith("/"):
            path = "/" + path
        return self.base_url + path

    # -- scripting ---------------------------------------------------------------------------
    def enqueue(self, path: str, *replies: Reply) -> None:
        """Append replies to `path`'s queue; each request to the path consumes one."""
        with self._lock:
            self._queues[path].extend(replies)

    def set_default(self, path: str, reply: Reply) -> None:
        """The reply for `path` whenever its queue is empty (repeats forever)."""
        with self._lock:
            self._defaults[path] = reply

    def set_handler(self, path: str, handler: "typing.Callable[[RequestRecord], Reply]") -> None:
        """Answer `path`, whenever its queue is empty, with `handler(request)`."""
        with self._lock:
            self._handlers[path] = handler

    def reset(self) -> None:
        """Forget queues, per-path defaults, counts and the request log."""
        with self._lock:
            self._queues.clear()
            self._defaults.clear()
            self._handlers.clear()
            self._counts.clear()
            self._requests.clear()

    # -- observation -------------------------------------------------------------------------
    def count(self, path: str | None = None) -> int:
        """Requests received for `path` (query string ignored), or in total when path is None."""
        with self._lock:
            return sum(self._counts.values()) if path is None else self._counts[path]

    @property
    def requests(self) -> list[RequestRecord]:
        """A copy of the request log, in arrival order."""
        with self._lock:
            return list(self._requests)

    def pending(self, path: str) -> int:
        """Scripted replies not yet consumed for `path`."""
        with self._lock:
            return len(self._queues[path])

    # -- internals ---------------------------------------------------------------------------
    def _next_reply(self, method: str, target: str, headers: dict[str, str],
                    body: bytes = b"") -> Reply:
        path = target.split("?", 1)[0]
        record = RequestRecord(method, path, target, headers, body)
        with self._lock:
            self._counts[path] += 1
            self._requests.append(record)
            queue = self._queues.get(path)
            if queue:
                return queue.popleft()
            handler = self._handlers.get(path)
            if handler is None:
                return self._defaults.get(path, self._default)
        return handler(record)

    def _wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; False if the server is stopping."""
        if seconds <= 0:
            return not self._stopping.is_set()
        return not self._stopping.wait(seconds)


class _Server(ThreadingHTTPServer):
    # socketserver's default listen backlog is 5: more clients connecting at once than that
    # (astro --concurrency 8) had their SYNs dropped and retried a second later, which measured
    # the kernel's retransmission timer instead of the client.
    request_queue_size = 128


class _Handler(BaseHTTPRequestHandler):
    api: ApiServer  # set by ApiServer.start on a subclass
    protocol_version = "HTTP/1.1"  # so Content-Length (not connection close) delimits bodies

    def log_message(self, format, *args):  # noqa: A002 - keep test output quiet
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        reply = self.api._next_reply(self.command, self.path, dict(self.headers.items()), body)
        if not self.api._wait(reply.delay):
            self.close_connection = True
            return
        body = reply.body if self.command != "HEAD" else b""
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Connection", "close")
            self.end_headers()
            if reply.truncate_to is not None:
                body = body[: reply.truncate_to]
            self.wfile.write(body)
            self.wfile.flush()
            if reply.hold_open > 0:
                self.api._wait(reply.hold_open)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            pass
        self.close_connection = True

    do_GET = _answer
    do_HEAD = _answer
    do_POST = _answer
