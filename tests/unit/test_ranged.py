"""Parallel ranged downloads (vlprep.ranged through vlprep.fetch) against the stand-in host:
several connections, verified in order, resumable range by range, and one clean stream again
when the host changes the file or ignores ranges."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from standin.server import StandinServer
from vlprep.fetch import fetch
from vlprep.ranged import CONTROL_SUFFIX, SEGMENT, RangeState, merge, missing

MiB = 1 << 20
SIZE = 4 * SEGMENT + 12345  # five ranges, the last one short
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("VLPREP_PROGRESS", "0")


@pytest.fixture(scope="module")
def data() -> bytes:
    return os.urandom(SIZE)


@pytest.fixture
def srv(tmp_path, data):
    root = tmp_path / "served"
    root.mkdir()
    (root / "big.bin").write_bytes(data)
    (root / "big-v2.bin").write_bytes(data[::-1])
    with StandinServer(root) as server:
        yield server


@pytest.fixture
def session():
    with requests.Session() as s:
        s.trust_env = False  # stay on 127.0.0.1
        yield s


def run_fetch(srv, tmp_path, data, **kwargs):
    options = {
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "retries": 3,
        "backoff": 0.01,
        "max_backoff": 0.2,
        "timeout": 5,
        "connections": 4,
    }
    return fetch("demo/big", [srv.url + "big.bin"], tmp_path / "dl" / "big.bin", **options | kwargs)


def leftovers(tmp_path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "dl").iterdir() if p.name != "big.bin")


def test_spans_merge_and_the_gaps_are_cut_into_segments():
    assert merge([[5, 9], [0, 3], [3, 4], [8, 12], [20, 20]]) == [[0, 4], [5, 12]]
    assert missing([[0, 4], [5, 12]], 30, 8) == [(4, 5), (12, 20), (20, 28), (28, 30)]
    assert missing([], 10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert missing([[0, 10]], 10, 4) == []


def test_a_big_file_comes_over_several_connections_verified(srv, tmp_path, data):
    report = run_fetch(srv, tmp_path, data)
    assert (tmp_path / "dl" / "big.bin").read_bytes() == data
    assert report["sha256"] == hashlib.sha256(data).hexdigest()
    stats = srv.stats()["big.bin"]
    assert stats["requests"] == 5
    assert stats["statuses"] == {"206": 5}  # the first range asked for first, then the rest
    assert stats["bytes_sent"] < SIZE * 1.01
    assert leftovers(tmp_path) == []


def test_one_connection_is_one_stream(srv, tmp_path, data):
    run_fetch(srv, tmp_path, data, connections=1)
    assert srv.stats()["big.bin"]["requests"] == 1


def test_a_dropped_range_is_fetched_again_from_where_it_stopped(srv, tmp_path, data):
    srv.set_faults([{"kind": "drop", "path": "big.bin", "after": 2, "bytes": MiB, "times": 1}])
    run_fetch(srv, tmp_path, data)
    assert (tmp_path / "dl" / "big.bin").read_bytes() == data
    assert srv.stats()["big.bin"]["bytes_sent"] < SIZE + 2 * MiB


def test_wrong_bytes_in_a_range_fail_the_checksum_and_leave_nothing(srv, tmp_path, data):
    srv.set_faults([{"kind": "wrong_bytes", "path": "big.bin", "offset": 3 * SEGMENT + 7}])
    with pytest.raises(Exception, match="sha256 mismatch"):
        run_fetch(srv, tmp_path, data, retries=0)
    assert not (tmp_path / "dl" / "big.bin").exists()
    assert leftovers(tmp_path) == []


def test_a_file_changed_mid_download_restarts_as_one_clean_stream(srv, tmp_path, data):
    # ranges after the first are answered from another version with another validator:
    # If-Range makes the host send the whole (new) file; the parts are thrown away
    changed = data[: SIZE // 2] + bytes(SIZE - SIZE // 2)
    (tmp_path / "served" / "big-v3.bin").write_bytes(changed)
    srv.set_faults([{"kind": "change", "path": "big.bin", "to": "big-v3.bin", "after": 1}])
    run_fetch(srv, tmp_path, changed)
    assert (tmp_path / "dl" / "big.bin").read_bytes() == changed
    statuses = srv.stats()["big.bin"]["statuses"]
    assert statuses.get("200", 0) >= 2  # the first GET, the range answered whole, the restart


def test_429_under_load_is_waited_out_with_fewer_connections(srv, tmp_path, data, caplog):
    srv.set_faults(
        [{"kind": "ratelimit", "path": "big.bin", "after": 1, "times": 2, "retry_after": 0}]
    )
    run_fetch(srv, tmp_path, data)
    assert (tmp_path / "dl" / "big.bin").read_bytes() == data
    assert "using 2" in caplog.text or "using 1" in caplog.text


def test_a_host_that_ignores_ranges_gets_one_stream(srv, tmp_path, data):
    srv.set_settings(ignore_range=True)  # 200 and the whole file, whatever Range says
    run_fetch(srv, tmp_path, data)
    assert (tmp_path / "dl" / "big.bin").read_bytes() == data
    assert srv.stats()["big.bin"]["requests"] == 1
    assert srv.stats()["big.bin"]["bytes_sent"] == SIZE


def test_a_kill_keeps_every_finished_range_and_the_rerun_fetches_the_rest(srv, tmp_path, data):
    """SIGKILL a ranged download half-way (8 MiB/s per connection), rerun: the
    control file says what is on disk; only the rest crosses the network again."""
    srv.set_settings(rate=8 * MiB)  # a slow host: each connection capped
    dest = tmp_path / "dl" / "big.bin"
    code = (
        "import sys; from pathlib import Path; from vlprep.fetch import fetch; "
        f"fetch('demo/big', [{srv.url + 'big.bin'!r}], Path({str(dest)!r}), size={SIZE}, "
        f"sha256={hashlib.sha256(data).hexdigest()!r}, connections=4, timeout=5)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "scripts"), "VLPREP_PROGRESS": "0"}
    child = subprocess.Popen([sys.executable, "-c", code], env=env)
    control = dest.with_name(dest.name + CONTROL_SUFFIX)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = RangeState.load(control, SIZE, None) if control.exists() else None
        if state is None and control.exists():
            state = _any_state(control)
        if state is not None and state.have() > SIZE // 3:
            break
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert not dest.exists()
    recorded = _any_state(control)
    assert recorded is not None and 0 < recorded.have() < SIZE
    sent_before = srv.stats()["big.bin"]["bytes_sent"]
    srv.set_settings(rate=None)
    run_fetch(srv, tmp_path, data)
    assert dest.read_bytes() == data
    again = srv.stats()["big.bin"]["bytes_sent"] - sent_before
    # the rerun asks only for what the control file lacks
    assert again == SIZE - recorded.have()
    refetched = sent_before + again - SIZE
    print(f"\nkill at {recorded.have() / SIZE:.0%}: re-fetched {refetched / SIZE:.2%} of the file")
    assert refetched < 0.05 * SIZE  # what was in flight: small next to what was kept
    assert leftovers(tmp_path) == []


def _any_state(control: Path) -> RangeState | None:
    data = json.loads(control.read_text())
    return RangeState.load(control, data["size"], data["validator"])


def test_a_control_file_of_another_file_is_not_trusted(srv, tmp_path, data):
    dest = tmp_path / "dl" / "big.bin"
    dest.parent.mkdir(parents=True)
    part = dest.with_name("big.bin.part")
    part.write_bytes(bytes(SIZE))  # zeros where the file should be
    dest.with_name("big.bin.part.json").write_text(json.dumps({"etag": '"other"'}))
    dest.with_name("big.bin" + CONTROL_SUFFIX).write_text(
        json.dumps({"size": SIZE, "validator": '"something else"', "done": [[0, SIZE]]})
    )
    run_fetch(srv, tmp_path, data)
    assert dest.read_bytes() == data


# -- S3: the same engine over ranged GetObjects, each guarded by If-Match ------------------


@pytest.fixture
def s3(tmp_path, data):
    from standin.s3 import S3Standin

    world = tmp_path / "world"
    (world / "bucket" / "tar").mkdir(parents=True)
    (world / "bucket" / "tar" / "big.bin").write_bytes(data[: 2 * SEGMENT + 4321])
    with S3Standin(world) as standin:
        yield standin


def fetch_object(s3, tmp_path, data, **kwargs):
    from vlprep.s3 import fetch_s3

    options = {
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "endpoint_url": s3.endpoint_url,
        "retries": 3,
        "timeout": 5.0,
        "backoff": 0.01,
        "max_backoff": 0.2,
        "connections": 3,
    }
    dest = tmp_path / "dl" / "big.bin"
    return fetch_s3("demo/s3", "s3://bucket/tar/big.bin", dest, **options | kwargs)


def test_a_big_s3_object_comes_as_ranged_getobjects(s3, tmp_path, data):
    obj = data[: 2 * SEGMENT + 4321]
    fetch_object(s3, tmp_path, obj)
    assert (tmp_path / "dl" / "big.bin").read_bytes() == obj
    stats = s3.stats()["bucket/tar/big.bin"]
    assert stats["requests"] == 3 and stats["bytes_sent"] == len(obj)
    assert leftovers(tmp_path) == []


def test_an_s3_object_replaced_mid_download_restarts_as_one_stream(s3, tmp_path, data):
    # after the first range, every GetObject is answered for a new version (another ETag):
    # If-Match refuses the ranges (412), and the object comes again as one stream
    new = data[: 2 * SEGMENT + 4321][::-1]
    s3.upload("bucket", "tar/big-v2.bin", new)
    s3.set_faults([{"kind": "change", "to": "bucket/tar/big-v2.bin", "after": 1}])
    fetch_object(s3, tmp_path, new)
    assert (tmp_path / "dl" / "big.bin").read_bytes() == new
    assert leftovers(tmp_path) == []


def test_a_host_limiting_connections_keeps_the_ones_it_serves(srv, tmp_path, data, caplog):
    """A host serving at most 3 connections per client refuses the 4th with 429: the download
    goes on with those it is serving (our other requests at that moment), not down to one, and
    a range refused while the host is busy with our own others waits rather than gives up."""
    srv.set_settings(max_connections=3, rate=16 * MiB)
    run_fetch(srv, tmp_path, data, connections=4)
    assert (tmp_path / "dl" / "big.bin").read_bytes() == data
    assert "using 3" in caplog.text or "using 2" in caplog.text
    assert "using 1" not in caplog.text


# -- hub: big LFS files through the same engine, then huggingface_hub finds them complete ---


def test_a_big_hub_file_comes_over_several_connections(tmp_path, data):
    from standin.hub import HubStandin
    from vlprep.hub import hub_fetch

    repo = tmp_path / "hub" / "datasets" / "acme" / "big"
    repo.mkdir(parents=True)
    big = data[: 2 * SEGMENT + 999]
    (repo / "big.bin").write_bytes(big)
    (repo / "README.md").write_text("# big\n")
    with HubStandin(tmp_path / "hub") as hub:
        sha = hub.sha("acme/big")
        dest = tmp_path / "dl" / "big"
        hub_fetch("big", "acme/big", "dataset", sha, None, dest, endpoint=hub.url, connections=3)
        assert (dest / "big.bin").read_bytes() == big
        gets = [
            r for r in hub.requests() if r["method"] == "GET" and r["path"].endswith("/big.bin")
        ]
    assert len(gets) == 3 and all(r["range"] for r in gets)  # ranged, and not again after
