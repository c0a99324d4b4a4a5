"""A download killed half-way resumes through the workflow and re-transfers almost nothing."""

import hashlib
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from standin.server import StandinServer
from standin.world import write_config
from tests.e2e.conftest import REPO, run_snakemake, snakemake_cmd

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MiB = 1 << 20
# the size: what a kill loses is what the kernel held for each connection plus 1 MiB
# not yet recorded (vlprep.ranged), a share that shrinks as files grow
SIZE = 1024 * MiB
# bytes/s the host sends per connection (16 of them: vlprep.ranged), so the kill lands
# mid-body; a slow host's rate, so that what is in flight is what a real link holds, not the
# megabytes loopback's socket buffers do
RATE = 8 * MiB


def write_payload(path, size: int) -> str:
    """Deterministic incompressible bytes; returns their sha256."""
    block = random.Random(7).randbytes(MiB)
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        for index in range(size // MiB):
            chunk = index.to_bytes(8, "big") + block[8:]
            f.write(chunk)
            digest.update(chunk)
    return digest.hexdigest()


def on_disk(part: Path) -> int:
    """Bytes of the file a `.part` holds: its ranges' (vlprep.ranged's control file; the
    `.part` itself is sparse), or its size for a single stream."""
    control = part.with_name(part.name + ".ranges")
    try:
        return sum(end - start for start, end in json.loads(control.read_text())["done"])
    except (OSError, ValueError, KeyError):
        return part.stat().st_size if part.exists() and not control.exists() else 0


def test_kill_mid_download_then_resume(tmp_path):
    served = tmp_path / "www" / "big.example.org"
    served.mkdir(parents=True)
    sha256 = write_payload(served / "big.bin", SIZE)
    catalog = tmp_path / "catalog.yaml"
    entry = {
        "description": "a large file to kill and resume",
        "kind": "http",
        "url": "http://big.example.org/big.bin",
        "size": SIZE,
        "sha256": sha256,
        "license": "test data",
        "citation": "none",
    }
    catalog.write_text(yaml.safe_dump({"big_file": entry}))
    data = tmp_path / "data"
    target = data / "downloads" / "big_file" / "big.bin"
    part = target.with_name("big.bin.part")

    with StandinServer(tmp_path / "www") as server:
        server.set_settings(rate=RATE)  # a slow host: each connection capped
        config = write_config(
            tmp_path / "config.yaml", data_root=data, catalog=catalog, base_url=server.url
        )
        proc = subprocess.Popen(
            snakemake_cmd(config, str(target)),
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while on_disk(part) < SIZE // 2:
            assert proc.poll() is None and time.monotonic() < deadline, "download never got going"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        kept = on_disk(part)
        assert not target.exists()

        server.set_settings(rate=None)
        assert run_snakemake(config, "--unlock").returncode == 0
        result = run_snakemake(config, str(target))
        assert result.returncode == 0, result.stderr[-3000:]
        sent = server.stats()["big.example.org/big.bin"]["bytes_sent"]

    overhead = sent / SIZE - 1
    print(
        f"\nkilled at {kept / MiB:.0f} MiB of {SIZE / MiB:.0f} MiB; host sent {sent} bytes: "
        f"{100 * overhead:.2f}% more than the file"
    )
    # over 16 connections, a kill loses what each had received and not yet recorded
    assert overhead < 0.02
    assert not part.exists() and not target.with_name("big.bin.part.json").exists()
    assert not target.with_name("big.bin.part.ranges").exists()
    assert hashlib.sha256(target.read_bytes()).hexdigest() == sha256
