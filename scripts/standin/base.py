"""What every stand-in service shares: a threaded HTTP server with state, run in a background
thread (tests) or in the foreground (the CLI that the demo starts), with pid and port files.
"""

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO, Self

log = logging.getLogger(__name__)


class StateServer(ThreadingHTTPServer):
    """A threaded server whose handlers reach shared state as `self.server.state`."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], state: Any
    ) -> None:
        super().__init__(address, handler)
        self.state = state

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up (killed, timed out) is routine here, not a traceback."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            log.debug("client %s went away", client_address)
            return
        super().handle_error(request, client_address)


class Service:
    """A stand-in on 127.0.0.1: `with Service(...) as svc:` serves from a background thread."""

    name = "standin"

    def __init__(
        self, handler: type[BaseHTTPRequestHandler], state: Any, host: str, port: int
    ) -> None:
        self.state = state
        self._httpd = StateServer((host, port), handler, state)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def address(self) -> str:
        """`http://host:port`, without a trailing slash."""
        return f"http://{self._httpd.server_address[0]}:{self.port}"

    def start(self) -> Self:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},  # quick shutdown keeps test teardown fast
            name=f"{self.name}:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def closing(self) -> None:
        """Called when the service stops; subclasses release waiting handlers here."""

    def serve_forever(self) -> None:
        """Serve in the calling thread (the CLI) until interrupted."""
        try:
            self._httpd.serve_forever()
        finally:
            self.closing()
            self._httpd.server_close()

    def stop(self) -> None:
        self.closing()
        if self._thread:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ChildService:
    """A stand-in as its own process (`python -m <module> ... --port 0`), as the demo and the
    benchmarks run them: `with ChildService(...) as address:`; stopped on exit."""

    def __init__(self, module: str, args: list[str], state_dir: Path) -> None:
        name = module.rsplit(".", 1)[-1]
        self.cmd = [sys.executable, "-m", module, *args]
        self.port_file, self.log_path = state_dir / f"{name}.port", state_dir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> str:
        """Start it and wait until it listens; return `http://127.0.0.1:<port>`."""
        self.port_file.unlink(missing_ok=True)
        cmd = [*self.cmd, "--port", "0", "--port-file", str(self.port_file)]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        with open(self.log_path, "w") as log_file:
            self.proc = subprocess.Popen(cmd, stdout=log_file, stderr=log_file, env=env)
        for _ in range(400):
            if self.port_file.is_file() and self.port_file.read_text().strip():
                return f"http://127.0.0.1:{self.port_file.read_text().strip()}"
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.cmd[2]} did not start; see {self.log_path}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def cli_parser(description: str) -> argparse.ArgumentParser:
    """The options every stand-in CLI takes; callers add their own."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=0, help="0: pick a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--pid-file", type=Path)
    parser.add_argument("--port-file", type=Path, help="written once the port is listening")
    return parser


def _write_whole(path: Path, text: str) -> None:
    """Write a pid/port file whole, so a poller never reads half of it."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def serve_cli(service: Service, args: argparse.Namespace, what: str) -> int:
    """Serve until SIGTERM or Ctrl-C, with pid/port files written first and removed after."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    written = [p for p in (args.pid_file, args.port_file) if p]
    if args.pid_file:
        _write_whole(args.pid_file, f"{os.getpid()}\n")
    if args.port_file:
        _write_whole(args.port_file, f"{service.port}\n")
    log.info("serving %s at %s", what, service.address)
    try:
        service.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        for path in written:
            path.unlink(missing_ok=True)
    return 0


COPY_CHUNK = 1 << 20


def served_size(size: int, faults: dict[str, dict[str, Any]]) -> int:
    """The size a file of `size` bytes is served as: its real size, or under a wrong_length
    fault its first `bytes` bytes (default: half), announced as if that were the whole file."""
    if "wrong_length" not in faults:
        return size
    cut = faults["wrong_length"].get("bytes")
    return min(size, size // 2 if cut is None else int(cut))


def copy_with_faults(
    write: Callable[[bytes], Any],
    fh: BinaryIO,
    start: int,
    count: int,
    faults: dict[str, dict[str, Any]],
    sent: Callable[[int], None],
) -> None:
    """Send `count` bytes of `fh` from `start` through `write`, as the faults ask.

    trickle paces the bytes to `rate` per second; wrong_bytes flips the byte at `offset`
    (default: the middle of the file). `sent(n)` is told after every chunk, so a client that
    vanishes half-way is still charged for what it got.
    """
    rate = faults.get("trickle", {}).get("rate")
    chunk = max(1, min(COPY_CHUNK, int(rate) // 10)) if rate else COPY_CHUNK
    flip_at = -1  # no byte flipped
    if "wrong_bytes" in faults:
        offset = faults["wrong_bytes"]["offset"]
        flip_at = os.fstat(fh.fileno()).st_size // 2 if offset is None else int(offset)
    fh.seek(start)
    began, done = time.monotonic(), 0
    while done < count:
        data = bytearray(fh.read(min(chunk, count - done)))
        if not data:
            break
        pos = start + done
        if pos <= flip_at < pos + len(data):
            data[flip_at - pos] ^= 0xFF
        write(data)
        done += len(data)
        sent(len(data))
        if rate:
            ahead = done / rate - (time.monotonic() - began)
            if ahead > 0:
                time.sleep(ahead)
