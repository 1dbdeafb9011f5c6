"""The live progress line of `astro fetch`: shown on a terminal (stderr a pty here), never when
stderr is not one (how ClickHouse runs astro), and cleared before the failure line, which stays
the last thing printed."""

from __future__ import annotations

import os
import pty
import select
import subprocess

from astro_dev.api_server import Reply, json_reply
from conftest import USER_SCRIPTS

ASTRO = USER_SCRIPTS / "astro"


def slow_pages(api, fail_on: int | None = None) -> str:
    def answer(request):
        page = int(request.param("page"))
        if page == fail_on:
            return Reply(status=404, body=b"{}")
        return json_reply({"data": [{"id": page}] if page <= 6 else []}, delay=0.3)
    api.set_handler("/items", answer)
    return api.url("/items")


def run_on_a_terminal(args: list[str]) -> tuple[int, str]:
    """Runs astro with stderr on a pseudo-terminal; its exit status and all it wrote there."""
    main, secondary = pty.openpty()
    proc = subprocess.Popen([str(ASTRO), *args], stdout=subprocess.PIPE, stderr=secondary,
                            stdin=subprocess.DEVNULL)
    os.close(secondary)
    seen = b""
    while True:
        ready, _, _ = select.select([main], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the process closed its end
            break
        if not chunk:
            break
        seen += chunk
    proc.wait(timeout=30)
    os.close(main)
    return proc.returncode, seen.decode(errors="replace")


def fetch_args(url: str) -> list[str]:
    return ["fetch", "--url", url, "--records", "/data", "--paginate", "page:page",
            "--output", "records", "--format", "JSONEachRow", "--max-elapsed", "30s"]


def test_a_terminal_sees_the_live_line(api):
    status, seen = run_on_a_terminal(fetch_args(slow_pages(api)))
    assert status == 0, seen
    assert "pages," in seen and "records," in seen and "in flight" in seen, repr(seen)


def test_the_failure_line_is_the_last_thing_printed(api):
    status, seen = run_on_a_terminal(fetch_args(slow_pages(api, fail_on=6)))
    assert status == 1, seen
    last = seen.rstrip("\r\n").split("\n")[-1]
    # The live line was cleared (erased with an escape) before the failure line went out.
    assert last.lstrip("\r").split("\x1b[2K")[-1].startswith("astro: page 6: fetch of"), repr(last)
    assert "pages," in seen, repr(seen)


def test_no_line_when_stderr_is_not_a_terminal(api):
    proc = subprocess.run([str(ASTRO), *fetch_args(slow_pages(api))], capture_output=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == b""
