"""The stand-in host's slow-host settings: a per-connection rate cap, latency before the first
byte, a limit on requests in flight per client (429 past it) and ignoring Range.

The ranged-download benchmark measures vlprep against aria2c on exactly these, so each must
do what it says: the cap holds per connection (N connections get N x rate, not rate shared),
latency delays every answer, the limit refuses with Retry-After, and Range is ignored whole.
"""

import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from standin.server import StandinServer, parse_rate

MiB = 1 << 20
SIZE = 12 * MiB  # room for 4 x SPAN
RATE = 2_000_000  # bytes/s: slow enough to measure, quick enough for a unit test
SPAN = 2_400_000  # bytes per connection: 1.2 s at RATE


@pytest.fixture(scope="module")
def body() -> bytes:
    return random.Random(14).randbytes(SIZE)


@pytest.fixture
def root(tmp_path: Path, body: bytes) -> Path:
    (tmp_path / "big.bin").write_bytes(body)
    (tmp_path / "small.txt").write_bytes(b"small\n")
    return tmp_path


@pytest.fixture
def session():
    with requests.Session() as session:
        session.trust_env = False  # never through a proxy: the host is on 127.0.0.1
        yield session


def timed_range(url: str, start: int, length: int) -> tuple[bytes, float]:
    """A ranged GET on its own connection: (body, seconds from request to last byte)."""
    with requests.Session() as session:
        session.trust_env = False
        began = time.monotonic()
        resp = session.get(url, headers={"Range": f"bytes={start}-{start + length - 1}"})
        seconds = time.monotonic() - began
    assert resp.status_code == 206
    return resp.content, seconds


def parallel_ranges(url: str, count: int) -> list[float]:
    """`count` ranged GETs of SPAN bytes at once, each on its own connection; bytes/s each
    (0 for a short body)."""
    rates: list[float] = [0.0] * count

    def one(index: int) -> None:
        data, seconds = timed_range(url, index * SPAN, SPAN)
        rates[index] = SPAN / seconds if len(data) == SPAN else 0.0

    threads = [threading.Thread(target=one, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return rates


def test_rate_caps_each_connection_not_the_host(root, body):
    with StandinServer(root, rate=RATE) as srv:
        url = srv.url + "big.bin"
        data, seconds = timed_range(url, 1000, SPAN)
        assert data == body[1000 : 1000 + SPAN]
        assert 0.85 * RATE < SPAN / seconds < 1.1 * RATE
        srv.reset_stats()  # after the first answer is fully counted, so the peak is the four
        # Four connections at once: each still gets about RATE, so the host gives 4 x RATE.
        rates = parallel_ranges(url, 4)
        assert all(0.85 * RATE < rate < 1.1 * RATE for rate in rates), rates
        assert srv.stats()["big.bin"]["peak_concurrent"] == {"127.0.0.1": 4}
        assert srv.stats()["big.bin"]["bytes_sent"] == 4 * SPAN


def test_latency_delays_every_first_byte(root, session):
    with StandinServer(root) as srv:
        url = srv.url + "small.txt"
        began = time.monotonic()
        session.get(url)
        assert time.monotonic() - began < 0.2  # no latency unless asked for
        # Set at run time over HTTP, as a benchmark in another process would.
        shown = session.post(srv.url + "_standin/settings", json={"latency": 0.3}).json()
        assert shown["latency"] == 0.3 and shown["rate"] is None
        for method, headers in [("GET", {}), ("GET", {"Range": "bytes=1-"}), ("HEAD", {})]:
            began = time.monotonic()
            resp = session.request(method, url, headers=headers, stream=True)
            assert time.monotonic() - began >= 0.3, (method, headers)
            resp.close()
        assert resp.status_code == 200


def test_connection_limit_answers_429_with_retry_after(root, session):
    # A slow cap keeps the first two downloads in flight while the third arrives.
    with StandinServer(root, rate=100_000, max_connections=2) as srv:
        url = srv.url + "big.bin"
        held = [session.get(url, stream=True) for _ in range(2)]
        try:
            # bytes_sent follows running answers when asked not to wait for them.
            live = srv.url + "_standin/stats?settle=0"
            deadline = time.monotonic() + 2
            while session.get(live).json().get("big.bin", {}).get("bytes_sent", 0) == 0:
                assert time.monotonic() < deadline, "bytes_sent does not follow a running answer"
                time.sleep(0.02)
            with requests.Session() as other:
                other.trust_env = False
                refused = other.get(url)
            assert refused.status_code == 429
            assert refused.headers["Retry-After"] == "1"
        finally:
            for resp in held:
                resp.close()
        # Once one is answered (here: hung up on), the next request is let in again.
        deadline = time.monotonic() + 5
        while (status := session.get(srv.url + "small.txt").status_code) == 429:
            assert time.monotonic() < deadline, "the limit never freed up"
            time.sleep(0.1)
        assert status == 200
        stats = srv.stats()["big.bin"]
        assert stats["over_limit"] == 1 and stats["statuses"]["429"] == 1
        assert stats["peak_concurrent"] == {"127.0.0.1": 2}


def test_ignore_range_answers_the_whole_file(root, body, session):
    with StandinServer(root) as srv:
        url = srv.url + "big.bin"
        assert session.head(url).headers["Accept-Ranges"] == "bytes"
        srv.set_settings(ignore_range=True)
        resp = session.get(url, headers={"Range": "bytes=100-199"})
        assert resp.status_code == 200
        assert resp.content == body
        assert "Accept-Ranges" not in resp.headers and "Content-Range" not in resp.headers
        assert "Accept-Ranges" not in session.head(url).headers
        session.delete(srv.url + "_standin/settings")  # everything off again
        assert session.get(url, headers={"Range": "bytes=100-199"}).status_code == 206


def test_serves_32_connections_at_once(root):
    with StandinServer(root, latency=0.5) as srv:
        statuses: list[int] = []

        def one() -> None:
            with requests.Session() as session:
                session.trust_env = False
                statuses.append(session.get(srv.url + "small.txt").status_code)

        threads = [threading.Thread(target=one) for _ in range(32)]
        began = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # One after another would take 16 s; all at once, one latency and a little.
        assert time.monotonic() - began < 2.0
        assert statuses == [200] * 32
        assert srv.stats()["small.txt"]["peak_concurrent"] == {"127.0.0.1": 32}


def test_bad_settings_are_refused(root, session):
    with StandinServer(root) as srv:
        control = srv.url + "_standin/settings"
        for bad in [{"rate": 0}, {"latency": -1}, {"max_connections": 0}, {"speed": 1}]:
            assert session.post(control, json=bad).status_code == 400, bad
        assert session.post(control, json=[1]).status_code == 400
        assert session.get(control).json() == {
            "rate": None,
            "latency": 0.0,
            "max_connections": None,
            "ignore_range": False,
        }
        with pytest.raises(ValueError):
            srv.set_settings(ignore_range="yes")


@pytest.mark.parametrize(
    "text, rate",
    [("4000000", 4e6), ("4M", 4e6), ("4MB/s", 4e6), ("4 MB/s", 4e6), ("4MiB", 4 * MiB)],
)
def test_parse_rate(text, rate):
    assert parse_rate(text) == rate


def test_cli_takes_the_settings(root, session, tmp_path):
    port_file = tmp_path / "port"
    command = [sys.executable, "-m", "standin.server", "--root", str(root), "--port", "0"]
    command += ["--port-file", str(port_file), "--rate", "4MB/s", "--latency", "0.04"]
    command += ["--max-connections", "8", "--ignore-range"]
    scripts = Path(__file__).resolve().parents[2] / "scripts"
    proc = subprocess.Popen(command, cwd=scripts, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not (port_file.exists() and port_file.read_text().strip()):
            assert time.monotonic() < deadline and proc.poll() is None, "did not start"
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port_file.read_text().strip()}/"
        assert session.get(base + "_standin/settings").json() == {
            "rate": 4e6,
            "latency": 0.04,
            "max_connections": 8,
            "ignore_range": True,
        }
    finally:
        proc.terminate()
        proc.wait(timeout=10)
