"""Debian's headless chromium, driven over the Chrome DevTools Protocol (CDP) by websocket.

`Chromium` starts the browser with a throwaway profile and every way out of the machine shut:
DNS answers NOTFOUND for every name but loopback, all HTTP(S) goes to a proxy on a closed
loopback port, background services are off. A `Tab` opens a page with the Fetch domain pausing
every request: file:, data: and blob: go on, anything else is failed and recorded in `blocked`
(so a report that would load something from the internet shows it, naming the URL, and never
reaches it). Exceptions, console.error/assert and error log entries of the page and of every
frame or worker attached to it are recorded in `errors`.

One session per frame target: `Target.setAutoAttach(flatten)` attaches out-of-process frames
(and workers) paused, so their requests and errors are caught from their first instruction.
"""

import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import websocket

# What a page may load: what lives in the report file itself.
LOCAL_SCHEMES = ("file:", "data:", "blob:")
FLAGS = (
    "--headless=new",
    "--no-sandbox",  # root in a container: chromium's sandbox needs user namespaces
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--disable-breakpad",
    "--metrics-recording-only",
    "--mute-audio",
    # Nothing leaves loopback, even what slips past Fetch (the browser's own services).
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
    "--remote-debugging-port=0",
    "--window-size=1400,1000",
)
START_TIMEOUT = 30.0
COMMAND_TIMEOUT = 30.0


class CdpError(RuntimeError):
    """A CDP command failed, or the browser did not answer in time."""


def chromium_path() -> str | None:
    """Debian's chromium (the package's launcher), or None."""
    return shutil.which("chromium")


def skip_reason() -> str | None:
    """Why the browser tests cannot run here, saying what to run; None when they can."""
    if sys.platform != "linux":
        return "the browser tests run on Linux only"
    if chromium_path() is None:
        return (
            "chromium is not installed: run `bash .ci/install_browser.sh` as root "
            "(`make test` does when root), or `apt-get install chromium`"
        )
    return None


class Chromium:
    """A headless chromium with a throwaway profile; a context manager that kills it after."""

    def __init__(self, executable: str, log: Path):
        self.executable = executable
        self.log = log
        self._profile = tempfile.TemporaryDirectory(
            prefix="vlprep-chromium-", ignore_cleanup_errors=True
        )
        self._process: subprocess.Popen | None = None
        self._ws: websocket.WebSocket | None = None
        self._ids = itertools.count(1)
        self._replies: dict[int, dict] = {}
        self._forget: set[int] = set()
        self._handlers: list[Callable[[dict], None]] = []

    def __enter__(self) -> "Chromium":
        profile = Path(self._profile.name)
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        with open(self.log, "ab") as log:
            self._process = subprocess.Popen(
                [self.executable, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                start_new_session=True,
            )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + START_TIMEOUT
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise CdpError(f"chromium did not start its DevTools endpoint; see {self.log}")
            time.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        self._ws = websocket.create_connection(
            f"ws://127.0.0.1:{port}{path}", timeout=COMMAND_TIMEOUT, suppress_origin=True
        )
        return self

    def __exit__(self, *exc) -> None:
        if self._ws is not None:
            self._ws.close()
        if self._process is not None:
            # The launcher's renderers and helpers share its session: end them all.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=10)
        self._profile.cleanup()

    def version(self) -> str:
        return self.send("Browser.getVersion")["product"]

    # The protocol: one websocket, commands answered by id, events dispatched as they come.

    def post(self, method: str, params: dict | None = None, session: str | None = None) -> None:
        """Send a command whose answer nobody waits for (it is dropped when it comes)."""
        self._forget.add(self._write(method, params, session))

    def _write(self, method: str, params: dict | None, session: str | None) -> int:
        message_id = next(self._ids)
        message = {"id": message_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self._ws.send(json.dumps(message))
        return message_id

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send a command and return its result; events that come first are dispatched."""
        message_id = self._write(method, params, session)
        deadline = time.monotonic() + COMMAND_TIMEOUT
        while message_id not in self._replies:
            if time.monotonic() > deadline:
                raise CdpError(f"{method}: no answer in {COMMAND_TIMEOUT:.0f} s")
            self._receive(deadline - time.monotonic())
        reply = self._replies.pop(message_id)
        if "error" in reply:
            raise CdpError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    def pump(self, seconds: float) -> None:
        """Dispatch events for `seconds`."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._receive(left)

    def on_event(self, handler: Callable[[dict], None]) -> None:
        self._handlers.append(handler)

    def _receive(self, timeout: float) -> None:
        self._ws.settimeout(max(timeout, 0.01))
        try:
            message = json.loads(self._ws.recv())
        except websocket.WebSocketTimeoutException:
            return
        if "id" in message:
            if message["id"] in self._forget:
                self._forget.discard(message["id"])
            else:
                self._replies[message["id"]] = message
            return
        for handler in self._handlers:
            handler(message)


class Tab:
    """A page of `browser` with its requests policed and its errors recorded."""

    def __init__(self, browser: Chromium):
        self.browser = browser
        self.blocked: list[str] = []
        self.errors: list[str] = []
        self._sessions: set[str] = set()
        browser.on_event(self._on_event)
        self.target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = browser.send(
            "Target.attachToTarget", {"targetId": self.target, "flatten": True}
        )["sessionId"]
        self._watch(self.session)

    def close(self) -> None:
        self._sessions.clear()
        self.browser.send("Target.closeTarget", {"targetId": self.target})

    def _watch(self, session: str) -> None:
        self._sessions.add(session)
        send = self.browser.send
        send("Fetch.enable", {"patterns": [{"urlPattern": "*"}]}, session)
        send("Runtime.enable", {}, session)
        send("Log.enable", {}, session)
        send(
            "Target.setAutoAttach",
            {"autoAttach": True, "waitForDebuggerOnStart": True, "flatten": True},
            session,
        )

    def _on_event(self, message: dict) -> None:
        session, method = message.get("sessionId"), message.get("method")
        if session not in self._sessions:
            return
        params = message.get("params", {})
        if method == "Fetch.requestPaused":
            url = params["request"]["url"]
            if url.startswith(LOCAL_SCHEMES):
                self.browser.post(
                    "Fetch.continueRequest", {"requestId": params["requestId"]}, session
                )
            else:
                self.blocked.append(url)
                self.browser.post(
                    "Fetch.failRequest",
                    {"requestId": params["requestId"], "errorReason": "BlockedByClient"},
                    session,
                )
        elif method == "Target.attachedToTarget":
            child = params["sessionId"]
            if params["targetInfo"]["type"] in ("iframe", "page"):
                self._watch(child)
            else:  # a worker: no Fetch or Log of its own to enable here
                self._sessions.add(child)
                self.browser.send("Runtime.enable", {}, child)
            self.browser.post("Runtime.runIfWaitingForDebugger", {}, child)
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            self.errors.append(
                f"exception: {text} ({details.get('url', '?')}:{details.get('lineNumber')})"
            )
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            args = " ".join(
                str(arg.get("value", arg.get("description", ""))) for arg in params.get("args", [])
            )
            self.errors.append(f"console.{params['type']}: {args}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            self.errors.append(f"log: {entry['text']} ({entry.get('url', '')})")

    def send(self, method: str, params: dict | None = None) -> dict:
        return self.browser.send(method, params, self.session)

    def open(self, url: str) -> None:
        self.send("Page.enable")
        self.send("Page.navigate", {"url": url})

    def evaluate(self, expression: str, context: int | None = None):
        """The value of a JavaScript expression (a promise is awaited); its exception raises."""
        params = {"expression": expression, "returnByValue": True, "awaitPromise": True}
        if context is not None:
            params["contextId"] = context
        result = self.send("Runtime.evaluate", params)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise CdpError(f"{expression[:80]}...: {details.get('exception', details)}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 20.0, what: str = ""):
        """Poll `expression` until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise CdpError(f"waited {timeout:.0f} s for {what or expression}")
            self.browser.pump(0.1)

    def frames(self) -> list[dict]:
        """Every frame of the page (nested ones too), as Page.getFrameTree gives them."""
        found, todo = [], [self.send("Page.getFrameTree")["frameTree"]]
        while todo:
            node = todo.pop()
            found.append(node["frame"])
            todo += node.get("childFrames", [])
        return found

    def evaluate_in_frames(self, expression: str) -> dict[str, object]:
        """`expression`'s value in every frame (an isolated world each: the frame's DOM, none
        of its scripts), keyed by the frame's URL cut to 100 characters."""
        values = {}
        for frame in self.frames():
            world = self.send(
                "Page.createIsolatedWorld", {"frameId": frame["id"], "worldName": "vlprep-check"}
            )
            key = frame["url"][:100]
            values[key] = self.evaluate(expression, world["executionContextId"])
        return values

    def click(self, x: float, y: float) -> None:
        """A left click at (x, y) in CSS pixels, as the mouse makes it."""
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1},
            )

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path
