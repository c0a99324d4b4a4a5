"""hub_fetch() with the real huggingface_hub client against the stand-in Hub on 127.0.0.1."""

import hashlib
import io
import json
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from huggingface_hub import HfApi
from PIL import Image

from standin.hub import (
    LAION_COCO_NAME,
    HubStandin,
    make_cc3m_wds_repo,
    make_laion_coco_repo,
)
from vlprep.errors import FetchError
from vlprep.hub import MANIFEST, hub_fetch

REPO_ROOT = Path(__file__).resolve().parents[2]
TOKEN = "hf_StandinSecretToken0123456789abcdXYZ"
MiB = 1 << 20


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv("VLPREP_PROGRESS", "0")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """Served root with laion-coco (15 parts), cc3m-wds, a gated copy and a big-file repo."""
    root = tmp_path_factory.mktemp("hub")
    make_laion_coco_repo(root)
    make_cc3m_wds_repo(root)
    gated = root / "datasets" / "acme" / "gated"
    gated.mkdir(parents=True)
    (gated / "data.parquet").write_bytes(random.Random(3).randbytes(50_000))
    (gated / "README.md").write_text("# gated\n")
    (gated / ".standin.json").write_text(json.dumps({"gated": True, "tokens": [TOKEN]}))
    return root


@pytest.fixture
def hub(world):
    with HubStandin(world, page_size=4) as server:
        yield server


# huggingface_hub writes what it receives in 10 MiB chunks: only a bigger file leaves partial
# bytes on disk when a download stops.
BIG = 12 * MiB


def big_repo(root: Path, size: int = BIG) -> str:
    """A repo with one big LFS file and a few small ones; returns its id."""
    repo = root / "datasets" / "acme" / "big"
    repo.mkdir(parents=True, exist_ok=True)
    (repo / "big.bin").write_bytes(random.Random(7).randbytes(size))
    for i in range(3):
        (repo / f"small-{i}.txt").write_text(f"small file {i}\n" * 10)
    return "acme/big"


def gets(hub: HubStandin, needle: str) -> list[dict]:
    return [r for r in hub.requests() if r["method"] == "GET" and needle in r["path"]]


# -- the stand-in and the real client ---------------------------------------------------------


def test_laion_coco_all_15_parts_pinned_and_clean(hub, tmp_path, caplog, recwarn):
    caplog.set_level(logging.DEBUG)
    sha = hub.sha("laion/laion-coco")
    dest = tmp_path / "laion_coco"
    report = hub_fetch(
        "laion_coco",
        "laion/laion-coco",
        "dataset",
        sha,
        ["part-*.parquet"],
        dest,
        endpoint=hub.url,
        expected_files=15,
    )
    names = sorted(p.name for p in dest.iterdir())
    assert names == sorted([MANIFEST] + [LAION_COCO_NAME.format(i) for i in range(15)])
    # The five the seed's f"part-0000{i}" misses are there.
    for i in range(10, 15):
        assert (dest / LAION_COCO_NAME.format(i)).is_file()
    table = pq.read_table(dest / LAION_COCO_NAME.format(14))
    assert {"URL", "TEXT", "all_captions", "all_similarities"} <= set(table.column_names)
    assert str(table.schema.field("all_captions").type) == "list<element: string>"
    assert str(table.schema.field("all_similarities").type) == "list<element: double>"
    assert report["sha"] == sha and len(report["files"]) == 15
    assert all(len(f["sha256"]) == 64 for f in report["files"])
    assert json.loads((dest / MANIFEST).read_text())["sha"] == sha
    assert not (dest / ".cache").exists()
    assert not dest.with_name(dest.name + ".partial").exists()
    # Pinned: no request names a branch; the tree listing was paginated (page_size=4).
    paths = [r["path"] for r in hub.requests()]
    assert not any("/main" in p for p in paths)
    assert sum("/tree/" in p for p in paths) >= 4
    assert all(r["status"] < 400 for r in hub.requests())
    # The client accepted the stand-in as a hub: no "does not seem to be served by a Hugging
    # Face Hub endpoint", no warnings at all from huggingface_hub.
    assert "does not seem to be served" not in caplog.text
    hf_warnings = [
        r for r in caplog.records if r.name.startswith("huggingface_hub") and r.levelno >= 30
    ]
    assert hf_warnings == []
    assert [str(w.message) for w in recwarn] == []


def test_api_calls_match_the_hub(hub):
    api = HfApi(endpoint=hub.url, token=False)
    sha = hub.sha("pixparse/cc3m-wds")
    info = api.repo_info("pixparse/cc3m-wds", repo_type="dataset")
    assert info.sha == sha and info.id == "pixparse/cc3m-wds"
    tree = list(api.list_repo_tree("pixparse/cc3m-wds", repo_type="dataset", revision=sha))
    tars = [f for f in tree if f.path.endswith(".tar")]
    assert len(tars) == 5 and all(f.lfs is not None and f.lfs.size == f.size for f in tars)
    readme = next(f for f in tree if f.path == "README.md")
    assert readme.lfs is None
    data = (hub.state.root / "datasets/pixparse/cc3m-wds/README.md").read_bytes()
    assert readme.blob_id == hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    info = api.get_paths_info("pixparse/cc3m-wds", ["_info.json"], repo_type="dataset")
    assert info[0].path == "_info.json"


def test_allow_patterns_cc3m_validation_only(hub, tmp_path):
    dest = tmp_path / "cc3m_valid"
    sha = hub.sha("pixparse/cc3m-wds")
    hub_fetch(
        "cc3m", "pixparse/cc3m-wds", "dataset", sha, ["cc3m-validation-*"], dest, endpoint=hub.url
    )
    assert sorted(p.name for p in dest.glob("*.tar")) == [
        "cc3m-validation-0000.tar",
        "cc3m-validation-0001.tar",
    ]
    assert gets(hub, "cc3m-train") == []
    with tarfile.open(dest / "cc3m-validation-0000.tar") as tar:
        names = tar.getnames()
        jpg = tar.extractfile(names[0]).read()
    assert len(names) == 40 and {n.rsplit(".", 1)[1] for n in names} == {"jpg", "txt"}
    Image.open(io.BytesIO(jpg)).verify()


def test_branch_revision_is_resolved_with_a_warning(hub, tmp_path, caplog):
    report = hub_fetch(
        "cc3m", "pixparse/cc3m-wds", "dataset", "main", ["_info.json"], tmp_path / "d",
        endpoint=hub.url,
    )  # fmt: skip
    assert report["sha"] == hub.sha("pixparse/cc3m-wds")
    assert "Pin that sha" in caplog.text
    info = json.loads((tmp_path / "d" / "_info.json").read_text())
    assert info["splits"]["train"]["num_samples"] == 60


def test_generators_are_deterministic(tmp_path):
    for make in (make_laion_coco_repo, make_cc3m_wds_repo):
        a, b = make(tmp_path / "a"), make(tmp_path / "b")
        files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
        assert files_a == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
        for rel in files_a:
            assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


# -- errors -------------------------------------------------------------------------------------


def test_wrong_revision_says_the_pin_is_gone(hub, tmp_path):
    dest = tmp_path / "x"
    with pytest.raises(FetchError) as err:
        hub_fetch("cc3m", "pixparse/cc3m-wds", "dataset", "a" * 40, None, dest, endpoint=hub.url)
    assert "pinned revision " + "a" * 40 in str(err.value)
    assert "pixparse/cc3m-wds" in str(err.value)
    assert not dest.exists()


def test_missing_repo_and_unmatched_patterns(hub, tmp_path):
    with pytest.raises(FetchError, match="does not exist"):
        hub_fetch("e", "acme/nope", "dataset", "main", None, tmp_path / "x", endpoint=hub.url)
    sha = hub.sha("pixparse/cc3m-wds")
    with pytest.raises(FetchError, match="no file of the repo matches"):
        hub_fetch("e", "pixparse/cc3m-wds", "dataset", sha, ["*.zip"], tmp_path / "x",
                  endpoint=hub.url)  # fmt: skip
    with pytest.raises(FetchError, match="3 files match .* the catalog expects 576"):
        hub_fetch("e", "pixparse/cc3m-wds", "dataset", sha, ["cc3m-train-*"], tmp_path / "x",
                  endpoint=hub.url, expected_files=576)  # fmt: skip
    assert not (tmp_path / "x").exists()


def test_gated_without_token_explains_what_to_do(hub, tmp_path):
    dest = tmp_path / "gated"
    with pytest.raises(FetchError) as err:
        hub_fetch("g", "acme/gated", "dataset", "main", None, dest, endpoint=hub.url)
    message = str(err.value)
    assert "acme/gated is gated" in message
    assert "https://huggingface.co/datasets/acme/gated" in message
    assert "HF_TOKEN" in message and "https://huggingface.co/settings/tokens" in message
    assert not dest.exists()
    assert not any(r["authorization"] for r in hub.requests())
    assert any(r["status"] == 401 for r in hub.requests())


def test_gated_with_token_works_and_the_token_never_shows(
    hub, tmp_path, caplog, capfd, monkeypatch
):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    dest = tmp_path / "gated"
    report = hub_fetch("g", "acme/gated", "dataset", "main", None, dest, endpoint=hub.url)
    assert (dest / "data.parquet").stat().st_size == 50_000
    resolves = [r for r in hub.requests() if "/resolve/" in r["path"]]
    assert resolves and all(r["authorization"] for r in resolves)
    # A token without access: 403 GatedRepo, and the message says the token lacks access.
    monkeypatch.setenv("HF_TOKEN", TOKEN[:-3] + "zzz")
    with pytest.raises(FetchError) as err:
        hub_fetch("g", "acme/gated", "dataset", "main", None, tmp_path / "g2", endpoint=hub.url)
    assert "has no access" in str(err.value)
    assert not (tmp_path / "g2").exists()
    out, errs = capfd.readouterr()
    for text in (caplog.text, out, errs, str(err.value), json.dumps(report)):
        assert TOKEN not in text and TOKEN[:-3] + "zzz" not in text
        assert TOKEN[3:20] not in text


def test_corrupted_bytes_fail_verification(hub, tmp_path):
    sha = hub.sha("pixparse/cc3m-wds")
    hub.set_faults([{"kind": "wrong_bytes", "path": "*cc3m-validation-0001.tar", "method": "GET"}])
    dest = tmp_path / "cc3m"
    with pytest.raises(FetchError) as err:
        hub_fetch(
            "cc3m", "pixparse/cc3m-wds", "dataset", sha, ["cc3m-validation-*"], dest,
            endpoint=hub.url,
        )  # fmt: skip
    message = str(err.value)
    assert "cc3m-validation-0001.tar" in message and "sha256" in message
    assert "pixparse/cc3m-wds" in message and sha in message
    assert len(gets(hub, "cc3m-validation-0001.tar")) == 2  # fetched once more, then gave up
    assert not dest.exists()
    # The good file is kept for the next run; the bad one is not.
    partial = tmp_path / "cc3m.partial"
    assert (partial / "cc3m-validation-0000.tar").is_file()
    assert not (partial / "cc3m-validation-0001.tar").exists()
    hub.clear_faults()
    hub.reset_stats()
    hub_fetch(
        "cc3m", "pixparse/cc3m-wds", "dataset", sha, ["cc3m-validation-*"], dest, endpoint=hub.url
    )
    assert [r["path"].rsplit("/", 1)[1] for r in gets(hub, ".tar")] == ["cc3m-validation-0001.tar"]


def test_file_changed_on_server_after_listing(world, tmp_path):
    big = big_repo(tmp_path / "served", size=300_000)
    with HubStandin(tmp_path / "served") as hub:
        sha = hub.sha(big)  # the listing is fixed now
        path = tmp_path / "served" / "datasets" / big / "big.bin"
        path.write_bytes(path.read_bytes()[:-1000])  # shorter file behind the old listing
        dest = tmp_path / "big"
        with pytest.raises(FetchError) as err:
            hub_fetch("big", big, "dataset", sha, None, dest, endpoint=hub.url)
    assert "acme/big" in str(err.value) and "big.bin" in str(err.value)
    assert not dest.exists()


# -- resuming -----------------------------------------------------------------------------------

CHILD = """
import sys
from pathlib import Path
from vlprep.hub import hub_fetch
hub_fetch("big", sys.argv[1], "dataset", sys.argv[2], None, Path(sys.argv[3]), endpoint=sys.argv[4])
"""


def test_resume_after_a_killed_download(tmp_path):
    served = tmp_path / "served"
    repo = big_repo(served)
    dest = tmp_path / "big"
    partial = tmp_path / "big.partial"
    with HubStandin(served) as hub:
        sha = hub.sha(repo)
        hub.set_faults(
            [{"kind": "trickle", "path": "*/big.bin", "method": "GET", "rate": 4_000_000}]
        )
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "scripts"), "VLPREP_PROGRESS": "0"}
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, repo, sha, str(dest), hub.url],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        downloads = partial / ".cache" / "huggingface" / "download"
        deadline = time.monotonic() + 30
        try:
            while time.monotonic() < deadline:
                partial_bytes = sum(p.stat().st_size for p in downloads.glob("*.incomplete"))
                smalls = [partial / f"small-{i}.txt" for i in range(3)]
                if partial_bytes >= 10 * MiB and all(p.is_file() for p in smalls):
                    break
                time.sleep(0.05)
            else:
                pytest.fail("the child never got going")
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
        assert not dest.exists()
        assert list(downloads.glob("*.incomplete"))  # what huggingface_hub 2.4 leaves behind
        hub.clear_faults()
        hub.reset_stats()
        report = hub_fetch("big", repo, "dataset", sha, None, dest, endpoint=hub.url)
        fetched = [r["path"].rsplit("/", 1)[1] for r in gets(hub, "/resolve/")]
    assert fetched == ["big.bin"]  # the finished small files were not downloaded again
    assert (dest / "big.bin").read_bytes() == (served / "datasets" / repo / "big.bin").read_bytes()
    assert report["bytes"] == BIG + sum(len(f"small file {i}\n" * 10) for i in range(3))
    assert not partial.exists()


def test_connection_cut_mid_file_resumes_in_process(tmp_path):
    served = tmp_path / "served"
    repo = big_repo(served)
    with HubStandin(served) as hub:
        sha = hub.sha(repo)
        cut = 11 * MiB  # after huggingface_hub wrote its first 10 MiB chunk
        hub.set_faults(
            [{"kind": "drop", "path": "*/big.bin", "method": "GET", "bytes": cut, "times": 1}]
        )
        hub_fetch("big", repo, "dataset", sha, None, tmp_path / "big", endpoint=hub.url)
        big_gets = gets(hub, "big.bin")
    # The retry asks for the rest from the last chunk written: 1 MiB is transferred twice.
    assert [r["range"] for r in big_gets] == [None, f"bytes={10 * MiB}-"]
    assert sum(r["bytes"] for r in big_gets) == cut + BIG - 10 * MiB


# -- transient failures: 5xx, retried by vlprep.hub -----------------------------------------

FAST = {"backoff": 0.01, "max_backoff": 0.05}  # vlprep.transfer.Backoff, in test time


def test_persistent_503_names_repo_revision_file_and_status(tmp_path):
    served = tmp_path / "served"
    repo = big_repo(served, size=300_000)
    dest = tmp_path / "big"
    with HubStandin(served) as hub:
        sha = hub.sha(repo)
        hub.set_faults([{"kind": "status", "code": 503, "path": "*/big.bin", "method": "GET"}])
        with pytest.raises(FetchError) as err:
            hub_fetch("big", repo, "dataset", sha, None, dest, endpoint=hub.url, retries=2, **FAST)
        big_gets = gets(hub, "big.bin")
        message = str(err.value)
        assert message.startswith(f"big (dataset {repo} @ {sha}): could not download big.bin ")
        assert f"at revision {sha} from {hub.url}" in message
        assert "HTTP 503 Service Unavailable (gave up after 3 attempts)" in message
        assert "the 3 of 4 files finished are kept" in message
        assert [r["status"] for r in big_gets] == [503, 503, 503]
        assert not dest.exists()
        # The finished files are kept: the next run asks for big.bin only.
        hub.clear_faults()
        hub.reset_stats()
        hub_fetch("big", repo, "dataset", sha, None, dest, endpoint=hub.url)
        fetched = [r["path"].rsplit("/", 1)[1] for r in gets(hub, "/resolve/")]
    assert fetched == ["big.bin"]
    assert (dest / "big.bin").read_bytes() == (served / "datasets" / repo / "big.bin").read_bytes()


@pytest.mark.parametrize("code", [502, 503, 504])
def test_a_5xx_burst_is_retried_and_the_bytes_verified(tmp_path, code):
    served = tmp_path / "served"
    repo = big_repo(served, size=300_000)
    with HubStandin(served) as hub:
        sha = hub.sha(repo)
        hub.set_faults([{"kind": "status", "code": code, "path": "*/big.bin", "method": "GET",
                         "times": 2}])  # fmt: skip
        hub_fetch("big", repo, "dataset", sha, None, tmp_path / "big", endpoint=hub.url,
                  retries=3, **FAST)  # fmt: skip
        statuses = [r["status"] for r in gets(hub, "big.bin")]
    assert statuses == [code, code, 200]
    assert (tmp_path / "big" / "big.bin").read_bytes() == (
        served / "datasets" / repo / "big.bin"
    ).read_bytes()


@pytest.mark.parametrize(("retry_after", "max_backoff", "at_least", "below"),
                         [(1, 5.0, 1.0, 2.5), (3600, 0.2, 0.2, 2.0)])  # fmt: skip
def test_retry_after_of_a_503_is_honoured_up_to_max_backoff(
    tmp_path, retry_after, max_backoff, at_least, below
):
    served = tmp_path / "served"
    repo = big_repo(served, size=300_000)
    with HubStandin(served) as hub:
        sha = hub.sha(repo)
        hub.set_faults([{"kind": "status", "code": 503, "path": "*/big.bin", "method": "GET",
                         "times": 1, "retry_after": retry_after}])  # fmt: skip
        began = time.monotonic()
        hub_fetch("big", repo, "dataset", sha, None, tmp_path / "big", endpoint=hub.url,
                  retries=2, backoff=0.01, max_backoff=max_backoff)  # fmt: skip
        waited = time.monotonic() - began
        statuses = [r["status"] for r in gets(hub, "big.bin")]
    assert statuses == [503, 200]
    assert at_least <= waited < below


@pytest.mark.slow
def test_unreachable_endpoint(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(FetchError, match="could not reach"):
        hub_fetch("e", "acme/x", "dataset", "b" * 40, None, tmp_path / "x",
                  endpoint=f"http://127.0.0.1:{port}")  # fmt: skip
    assert not (tmp_path / "x").exists()


# -- the CLI ------------------------------------------------------------------------------------


def test_cli_serves_generated_repos(tmp_path):
    port_file = tmp_path / "port"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "scripts")}
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "standin.hub", "--root", str(tmp_path / "root"),
            "--generate", "cc3m-wds", "--port", "0", "--port-file", str(port_file),
        ],
        env=env,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not port_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        endpoint = f"http://127.0.0.1:{port_file.read_text().strip()}"
        report = hub_fetch(
            "cc3m", "pixparse/cc3m-wds", "dataset", "main", ["cc3m-train-*"], tmp_path / "d",
            endpoint=endpoint, expected_files=3,
        )  # fmt: skip
        assert len(report["files"]) == 3
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert not port_file.exists()
