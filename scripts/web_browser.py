"""Open a page Export for Web wrote in headless Chromium, screenshot it, turn it with the mouse, screenshot again.

Chromium is driven through its DevTools protocol over a pipe (``--remote-debugging-pipe``), so
no driver package and no network port are needed: the screenshots are Chromium's own
(``Page.captureScreenshot``) and the orbit is a real mouse drag (``Input.dispatchMouseEvent``)
that reaches the page's OrbitControls as a user's would. WebGL runs on SwiftShader, Chromium's
software renderer, so no GPU or display is needed.

The browser is Debian's ``chromium`` (scripts/setup.sh installs it), or the one named by the
``BCNN_CHROMIUM`` environment variable.

Usage:  .venv/bin/python scripts/web_browser.py PAGE.html --output shot.png [--drag 200] [--epoch N]
        [--width 1280 --height 720]
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--use-angle=swiftshader",
    # Chromium refuses software WebGL unless told that SwiftShader is acceptable.
    "--enable-unsafe-swiftshader",
    "--ignore-gpu-blocklist",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--mute-audio",
    "--force-device-scale-factor=1",
)


class BrowserError(RuntimeError):
    pass


def find_chromium() -> str | None:
    """The Chromium to run: ``BCNN_CHROMIUM``, else the first Chromium or Chrome on the PATH."""
    named = os.environ.get("BCNN_CHROMIUM")
    if named:
        return named if shutil.which(named) else None
    return next((path for path in map(shutil.which, CHROMIUM_NAMES) if path), None)


class Chromium:
    """A headless Chromium with one page, driven over the DevTools protocol on fds 3 and 4."""

    def __init__(self, executable: str | None = None, width: int = 1280, height: int = 720, timeout: float = 60.0):
        executable = executable or find_chromium()
        if executable is None:
            raise BrowserError("no Chromium found: scripts/setup.sh installs Debian's chromium")
        self.timeout = timeout
        self._profile = tempfile.mkdtemp(prefix="bcnn_chromium_")
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()

        def connect_pipes():
            # The protocol takes its commands on fd 3 and answers on fd 4. The pipes may already sit on those
            # numbers, so they move out of the way first; dup2 makes the copies inheritable.
            reads, writes = (
                fcntl.fcntl(to_browser_read, fcntl.F_DUPFD, 10),
                fcntl.fcntl(from_browser_write, fcntl.F_DUPFD, 10),
            )
            os.dup2(reads, 3)
            os.dup2(writes, 4)

        command = [
            executable,
            *FLAGS,
            f"--window-size={width},{height}",
            f"--user-data-dir={self._profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        # close_fds=False keeps what connect_pipes made; Python's own descriptors are not inheritable anyway.
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            close_fds=False,
            preexec_fn=connect_pipes,
        )
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._buffer = b""
        self._next_id = 0
        self.console: list[str] = []
        # Every URL the page asked for: an exported page needs nothing but itself (and data: or blob: URLs).
        self.requests: list[str] = []
        try:
            targets = self.call("Target.getTargets")["targetInfos"]
            page = next(target for target in targets if target["type"] == "page")
            self._session = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)["sessionId"]
            self.call("Page.enable", session=True)
            self.call("Runtime.enable", session=True)
            self.call("Network.enable", session=True)
            self.call(
                "Emulation.setDeviceMetricsOverride",
                width=width,
                height=height,
                deviceScaleFactor=1,
                mobile=False,
                session=True,
            )
        except Exception:
            self.close()
            raise

    # -------------------------------------------------------- protocol

    def call(self, method: str, session: bool = False, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self._session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read(deadline)
            if reply.get("method") == "Network.requestWillBeSent":
                self.requests.append(reply["params"]["request"]["url"])
            elif reply.get("method") == "Runtime.consoleAPICalled":
                args = reply["params"].get("args", [])
                self.console.append(" ".join(str(arg.get("value", arg.get("description", ""))) for arg in args))
            elif reply.get("method") == "Runtime.exceptionThrown":
                self.console.append(json.dumps(reply["params"].get("exceptionDetails", {}))[:2000])
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise BrowserError(f"Chromium did not answer within {self.timeout:.0f} s")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                error = self._process.stderr.read().decode(errors="replace") if self._process.stderr else ""
                raise BrowserError(f"Chromium closed its pipe (exit code {self._process.poll()}):\n{error[-3000:]}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    # -------------------------------------------------------- what a test needs

    def open(self, path: str | os.PathLike[str]) -> None:
        self.call("Page.navigate", url=Path(path).resolve().as_uri(), session=True)

    def evaluate(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True, session=True
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        raise BrowserError(f"the page never made {expression!r} true within {timeout:.0f} s; console: {self.console}")

    def wait_for_viewer(self, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until the exported page has drawn the network (or reported why it cannot)."""
        self.wait_for("!!(window.bcnnViewer && (window.bcnnViewer.rendered || window.bcnnViewer.error))", timeout)
        state = self.evaluate(
            "({rendered: bcnnViewer.rendered, error: bcnnViewer.error, frames: bcnnViewer.frames, "
            "epoch: bcnnViewer.epoch, epochs: !!bcnnViewer.setEpoch})"
        )
        if state["error"]:
            raise BrowserError(f"the page reports: {state['error']}")
        return state

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until the view stops moving (OrbitControls' damping): no new frame for a while."""
        deadline = time.monotonic() + timeout
        frames = self.evaluate("bcnnViewer.frames")
        while time.monotonic() < deadline:
            time.sleep(0.4)
            now = self.evaluate("bcnnViewer.frames")
            if now == frames:
                return
            frames = now

    def drag(self, dx: float, dy: float = 0.0, steps: int = 12) -> None:
        """A left-button drag from the middle of the page, as a user turning the network."""
        width, height = self.evaluate("[innerWidth, innerHeight]")
        x, y = width / 2, height / 2
        self.call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y, session=True)
        self.call("Input.dispatchMouseEvent", type="mousePressed", x=x, y=y, button="left", clickCount=1, session=True)
        for step in range(1, steps + 1):
            self.call(
                "Input.dispatchMouseEvent",
                type="mouseMoved",
                x=x + dx * step / steps,
                y=y + dy * step / steps,
                button="left",
                buttons=1,
                session=True,
            )
            time.sleep(0.02)
        self.call(
            "Input.dispatchMouseEvent",
            type="mouseReleased",
            x=x + dx,
            y=y + dy,
            button="left",
            clickCount=1,
            session=True,
        )

    def screenshot(self, path: str | os.PathLike[str] | None = None) -> bytes:
        """A PNG of the page as Chromium draws it; also written to ``path`` when given."""
        png = base64.b64decode(self.call("Page.captureScreenshot", format="png", session=True)["data"])
        if path is not None:
            Path(path).write_bytes(png)
        return png

    def close(self) -> None:
        try:
            os.close(self._to_browser)
        except OSError:
            pass
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stderr:
            self._process.stderr.close()
        os.close(self._from_browser)
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path)
    parser.add_argument("--output", type=Path, required=True, help="the PNG to write")
    parser.add_argument("--drag", type=float, default=0.0, help="drag this many pixels to the right first")
    parser.add_argument("--epoch", type=float, default=None, help="move the epoch slider to this position first")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    args = parser.parse_args(argv)
    try:
        with Chromium(width=args.width, height=args.height) as browser:
            browser.open(args.page)
            browser.wait_for_viewer()
            if args.epoch is not None:
                browser.evaluate(f"bcnnViewer.setEpoch && bcnnViewer.setEpoch({args.epoch})")
            if args.drag:
                browser.drag(args.drag)
            browser.settle()
            browser.screenshot(args.output)
    except BrowserError as error:
        print(f"web_browser: error: {error}", file=sys.stderr)
        return 1
    print(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
