#!/usr/bin/env python3
"""The "usual Python script" that `astro` is benchmarked against (`python -m bench`).

A stdlib-only (urllib) fetcher with the same contract as `astro fetch`, written the way a careful
data engineer would write it for ClickHouse's executable() table function:

* exponential backoff with full jitter; retries connect errors, timeouts, interrupted bodies,
  5xx and 429 (honouring Retry-After when it fits the budget); other 4xx and a well-formed answer
  that fails validation are not retried;
* validation: JSON, message == "success", a `people` array of objects with string craft and name;
* nothing on stdout until the whole answer is fetched and validated; on failure one line on
  stderr and exit 1;
* output (TabSeparated, ClickHouse escaping):
    --output raw (default): source, fetched_at DateTime64(3,'UTC'), attempts, payload (compact)
    --output people:        craft, name, fetched_at

    python_fetch.py [--url URL] [--output raw|people] [--max-attempts 5] [--timeout 3]
                    [--max-elapsed 8] [--max-bytes 67108864]

The URL comes from --url, else $ASTRO_API_URL, else the Open Notify API.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

DEFAULT_URL = "http://api.open-notify.org/astros.json"

_TSV_ESCAPES = str.maketrans({
    "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0",
    "\b": "\\b", "\f": "\\f", "'": "\\'",
})


class Fatal(Exception):
    """Not worth retrying."""


class Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def tsv(value: str) -> str:
    return value.translate(_TSV_ESCAPES)


def redact(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def fetch_once(url: str, timeout: float, max_bytes: int) -> bytes:
    request = urllib.request.Request(url, headers={"Accept": "application/json",
                                                   "User-Agent": "python_fetch/1"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            if length is not None and int(length) > max_bytes:
                raise Fatal(f"answer of {length} bytes exceeds the {max_bytes}-byte limit")
            body = response.read(max_bytes + 1)
            if len(body) > max_bytes:
                raise Fatal(f"answer exceeds the {max_bytes}-byte limit")
            if length is not None and len(body) != int(length):
                raise Retryable(f"body cut short ({len(body)} of {length} bytes)")
            return body
    except urllib.error.HTTPError as exc:
        if exc.code == 429 or exc.code >= 500:
            raise Retryable(f"HTTP {exc.code}", retry_after_seconds(exc.headers.get("Retry-After")))
        raise Fatal(f"HTTP {exc.code}") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        if isinstance(exc, Fatal):
            raise
        reason = getattr(exc, "reason", exc)
        raise Retryable(f"network error: {reason}") from None
    except Exception as exc:  # http.client.IncompleteRead and friends
        if isinstance(exc, (Fatal, Retryable)):
            raise
        raise Retryable(f"interrupted: {exc!r}") from None


def validate(body: bytes) -> dict:
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise Fatal(f"answer is not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("message") != "success":
        raise Fatal("answer's message is not \"success\"")
    people = doc.get("people")
    if not isinstance(people, list):
        raise Fatal("answer has no people array")
    for i, person in enumerate(people):
        if not (isinstance(person, dict) and isinstance(person.get("craft"), str)
                and isinstance(person.get("name"), str)):
            raise Fatal(f"people[{i}] is not an object with string craft and name")
    return doc


def fetch(url: str, max_attempts: int, timeout: float, max_elapsed: float,
          max_bytes: int) -> tuple[dict, int]:
    start = time.monotonic()
    delay = 0.1
    attempt = 0
    while True:
        attempt += 1
        remaining = max_elapsed - (time.monotonic() - start)
        try:
            body = fetch_once(url, min(timeout, max(remaining, 0.001)), max_bytes)
            return validate(body), attempt
        except Retryable as exc:
            elapsed = time.monotonic() - start
            wait = exc.retry_after if exc.retry_after is not None else random.uniform(0, delay)
            delay = min(delay * 2, 2.0)
            if attempt >= max_attempts or elapsed + wait >= max_elapsed:
                raise Fatal(f"{exc} (gave up after {attempt} attempts, {elapsed:.1f}s)") from None
            time.sleep(wait)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python_fetch.py")
    parser.add_argument("--url", default=os.environ.get("ASTRO_API_URL") or DEFAULT_URL)
    parser.add_argument("--output", choices=("raw", "people"), default="raw")
    parser.add_argument("--max-attempts", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=3.0)
    parser.add_argument("--max-elapsed", type=float, default=8.0)
    parser.add_argument("--max-bytes", type=int, default=64 * 1024 * 1024)
    args = parser.parse_args(argv)
    try:
        doc, attempts = fetch(args.url, args.max_attempts, args.timeout, args.max_elapsed,
                              args.max_bytes)
    except Fatal as exc:
        print(f"python_fetch: {redact(args.url)}: {exc}", file=sys.stderr)
        return 1
    now = dt.datetime.now(dt.timezone.utc)
    fetched_at = now.strftime("%Y-%m-%d %H:%M:%S.") + f"{now.microsecond // 1000:03d}"
    if args.output == "raw":
        payload = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
        text = f"{tsv(redact(args.url))}\t{fetched_at}\t{attempts}\t{tsv(payload)}\n"
    else:
        text = "".join(f"{tsv(p['craft'])}\t{tsv(p['name'])}\t{fetched_at}\n"
                       for p in doc["people"])
    # UTF-8 whatever the locale of the ClickHouse process is.
    sys.stdout.buffer.write(text.encode("utf-8", "surrogatepass"))
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
