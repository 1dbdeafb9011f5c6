"""Self-checks of the loopback fake API (astro_dev.api_server) that the other tests rely on."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import urllib.error
import urllib.request

import pytest

from astro_dev.api_server import ApiServer, Reply, astros_body, astros_reply


def get(url, timeout=5):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_queue_then_default_and_counts(api):
    api.set_default("/astros.json", astros_reply([("ISS", "Ann")]))
    api.enqueue("/astros.json", Reply(status=503), Reply(status=429, headers={"Retry-After": "1"}))
    assert get(api.url())[0] == 503
    status, headers, _ = get(api.url())
    assert (status, headers["Retry-After"]) == (429, "1")
    status, _, body = get(api.url() + "?x=1")
    assert status == 200 and json.loads(body) == {"people": [{"craft": "ISS", "name": "Ann"}],
                                                  "number": 1, "message": "success"}
    assert get(api.url("/other"))[0] == 404
    assert api.count("/astros.json") == 3 and api.count() == 4
    assert api.requests[2].target == "/astros.json?x=1"
    assert api.pending("/astros.json") == 0


def test_truncated_body_announces_more_than_it_sends(api):
    body = astros_body([("ISS", "Ann")])
    api.set_default("/t", Reply(body=body, truncate_to=5))
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=5)
    conn.request("GET", "/t")
    resp = conn.getresponse()
    assert int(resp.headers["Content-Length"]) == len(body)
    with pytest.raises(http.client.IncompleteRead):
        resp.read()


def test_delay_and_stop_does_not_hang():
    api = ApiServer().start()
    api.set_default("/slow", Reply(body=b"{}", delay=30))
    with pytest.raises((socket.timeout, TimeoutError, urllib.error.URLError)):
        get(api.url("/slow"), timeout=0.3)
    # stop() must not wait for the delayed answer; run it aside so that a regression fails the
    # test instead of hanging the suite (a hang guard, not a speed goal).
    stopper = threading.Thread(target=lambda: (api.stop(), api.stop()))  # idempotent
    stopper.start()
    stopper.join(timeout=60)
    assert not stopper.is_alive(), "stop() waited for the delayed answer"


def test_utf8_body():
    assert astros_body([("天宫", "🚀")]).decode("utf-8") == \
        '{"people": [{"craft": "天宫", "name": "🚀"}], "number": 1, "message": "success"}'
