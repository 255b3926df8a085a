"""Headless Chromium for the report tests: open a page OFFLINE and read back what it shows.

Two ways in, both under a hard deadline so nothing can hang CI:

* :func:`render` — ``chromium --headless --dump-dom URL``: the DOM once the page has loaded and a
  virtual-time budget has run out.  Enough for a page that needs no click (the Allure 3 report
  renders any hash route this way: ``index.html#/<testResultId>``, ``#/categories``).
* :class:`Browser` — the DevTools protocol over ``--remote-debugging-pipe`` (NUL-separated JSON
  on file descriptors 3 and 4; stdlib only, no websocket, no npm) for what needs clicks or
  waiting for a condition: tree groups and attachments in the report are collapsed until someone
  opens them, and an HTML attachment lives in a sandboxed iframe of its own.

The browser never reaches the network: no host name resolves and everything proxied goes to a
closed port, so a page gets ``file:``/``data:``/``blob:`` and nothing else
(:attr:`Browser.outside_requests` lists what it tried).  A missing ``chromium`` raises
:class:`BrowserError` with a one-line message naming the Debian package; the tests turn that into
a failure, never a skip.

Reading a DOM (stdlib ``html.parser``): :func:`parse_html` gives a small element tree,
:func:`visible_text` the text a reader sees.  :func:`read_results` / :func:`result_ids` find the
Allure 3 test result id of a result (``md5(uuid)``, the ``#/<id>`` of the report).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import IO, Any

__all__ = [
    "DEBIAN_PACKAGE",
    "Browser",
    "BrowserError",
    "Element",
    "find_chromium",
    "parse_html",
    "read_results",
    "render",
    "result_ids",
    "visible_text",
]

DEBIAN_PACKAGE = "chromium"
MISSING_MESSAGE = (
    f"headless browser not found: no `chromium` on PATH (Debian: apt-get install {DEBIAN_PACKAGE}; CI: bash .ci/run)"
)


class BrowserError(Exception):
    """The browser is missing, failed, or missed its deadline (the message is one line)."""


# --------------------------------------------------------------------------------------------
# Launch


def find_chromium() -> str:
    """The Chromium executable: ``$CHROMIUM`` if set, else ``chromium`` on ``PATH``."""
    override = os.environ.get("CHROMIUM", "").strip()
    if override:
        found = shutil.which(override)
        if not found:
            raise BrowserError(f"headless browser not found: CHROMIUM={override!r} is not an executable")
        return found
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise BrowserError(MISSING_MESSAGE)
    return found


def _flags(profile: Path) -> list[str]:
    flags = [
        "--headless",
        "--disable-gpu",
        "--disable-dev-shm-usage",  # a container's small /dev/shm must not crash the renderer
        f"--user-data-dir={profile}",  # a fresh profile: no localStorage from an earlier run
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-background-timer-throttling",
        "--disable-renderer-backgrounding",
        "--disable-backgrounding-occluded-windows",
        "--mute-audio",
        "--hide-scrollbars",
        "--window-size=1600,1200",
        "--lang=ru-RU",
        # offline: no name resolves and nothing proxied gets through
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--proxy-server=http://127.0.0.1:9",
        "--proxy-bypass-list=<-loopback>",
    ]
    if os.geteuid() == 0:
        flags.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox on
    return flags


def _one_line(text: str, limit: int = 300) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    # Chromium's stderr is mostly dbus noise; the last FATAL/ERROR line says the most.
    serious = [line for line in lines if "FATAL" in line] or [line for line in lines if "ERROR" in line]
    line = (serious or lines or ["no output"])[-1]
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: the renderers and zygote go too
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def render(url: str, *, budget_ms: int = 3000, timeout: float = 40.0) -> str:
    """The DOM of ``url`` after it loaded and ``budget_ms`` of virtual time ran (``--dump-dom``).

    Virtual time runs the page's timers without waiting for them in real time.  Raises
    :class:`BrowserError` when Chromium is missing, fails, prints nothing, or is still running
    after ``timeout`` seconds (then it is killed, with every process it started).
    """
    chromium = find_chromium()
    with tempfile.TemporaryDirectory(prefix="kkt-hil-chromium-") as work:
        argv = [chromium, *_flags(Path(work) / "profile"), f"--virtual-time-budget={budget_ms}", "--dump-dom", url]
        with (Path(work) / "stdout").open("w+b") as out, (Path(work) / "stderr").open("w+b") as err:
            try:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True)
            except OSError as exc:
                raise BrowserError(f"chromium could not be started ({chromium}): {exc.strerror or exc}") from None
            try:
                returncode = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                raise BrowserError(f"chromium --dump-dom did not finish within {timeout:g} s: {url}") from None
            finally:
                _kill_group(proc)  # also whatever it left behind after a normal exit
            out.seek(0)
            err.seek(0)
            dom = out.read().decode("utf-8", errors="replace")
            stderr = err.read().decode("utf-8", errors="replace")
    if returncode != 0 or not dom.strip():
        raise BrowserError(f"chromium --dump-dom failed (exit {returncode}) on {url}: {_one_line(stderr)}")
    return dom


# --------------------------------------------------------------------------------------------
# DevTools protocol over a pipe


class Browser:
    """One headless Chromium driven through the DevTools protocol: one tab, flat sessions.

    ``with Browser(timeout=30) as browser:`` — every DevTools command must be answered within
    ``timeout`` seconds, and every wait (:meth:`open`, :meth:`wait_for`) has a deadline of its
    own; past one, :class:`BrowserError` is raised (the ``with`` then kills Chromium).
    """

    def __init__(self, *, timeout: float = 30.0) -> None:
        self._timeout = timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._work: tempfile.TemporaryDirectory[str] | None = None
        self._stderr: IO[bytes] | None = None  # a file: an unread pipe would stall Chromium when full
        self._to_browser = -1
        self._from_browser = -1
        self._buffer = b""
        self._next_id = 0
        self._page = ""  # session id of the tab
        self._frames: dict[str, str] = {}  # session id -> URL of an out-of-process child frame
        self.events: list[dict[str, Any]] = []
        #: URLs the page asked for that are not file:, data:, blob: or about: (all fail: offline)
        self.outside_requests: list[str] = []
        #: file: URLs the page asked for and did not get (a page that expects a file that is not there)
        self.failed_files: list[str] = []
        #: reloads :meth:`open` needed (``retry_if`` held, or a file: request failed)
        self.reloads = 0
        self._requests: dict[str, str] = {}  # request id -> URL

    # -- lifecycle

    def __enter__(self) -> Browser:
        chromium = find_chromium()
        self._work = tempfile.TemporaryDirectory(prefix="kkt-hil-chromium-")
        work = Path(self._work.name)
        self._stderr = (work / "stderr").open("w+b")
        cmd_read, cmd_write = os.pipe()  # our commands; Chromium reads them on fd 3
        out_read, out_write = os.pipe()  # its answers and events; it writes them on fd 4
        argv = [chromium, *_flags(work / "profile"), "--remote-debugging-pipe", "about:blank"]
        # The pipe ends arrive as the shell's stdin/stdout; it moves them to fds 3 and 4, gives
        # Chromium /dev/null instead and execs it (no preexec_fn, no fd-number clashes).
        script = 'exec "$@" 3<&0 4>&1 0</dev/null 1>/dev/null'
        try:
            self._proc = subprocess.Popen(
                ["/bin/sh", "-c", script, "sh", *argv],
                stdin=cmd_read,
                stdout=out_write,
                stderr=self._stderr,
                start_new_session=True,
            )
        except OSError as exc:
            for fd in (cmd_read, cmd_write, out_read, out_write):
                os.close(fd)
            self.close()
            raise BrowserError(f"chromium could not be started ({chromium}): {exc.strerror or exc}") from None
        finally:
            if self._proc is not None:
                os.close(cmd_read)
                os.close(out_write)
        self._to_browser, self._from_browser = cmd_write, out_read
        try:
            self._attach()
        except BaseException:
            self.close()
            raise
        return self

    def _attach(self) -> None:
        # The tab Chromium opened itself: a second tab would be a background tab, and a
        # background tab gets no animation frames (the report would render by fits and starts).
        targets = self._send("Target.getTargets", {}, None)["targetInfos"]
        pages = [t["targetId"] for t in targets if t["type"] == "page"]
        target = pages[0] if pages else self._send("Target.createTarget", {"url": "about:blank"}, None)["targetId"]
        self._page = self._send("Target.attachToTarget", {"targetId": target, "flatten": True}, None)["sessionId"]
        for method in ("Page.enable", "Runtime.enable", "Network.enable", "Page.bringToFront"):
            self.call(method)
        # child frames in processes of their own (sandboxed iframes) come as attached sessions
        self.call("Target.setAutoAttach", autoAttach=True, waitForDebuggerOnStart=False, flatten=True)

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        for fd in (self._to_browser, self._from_browser):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._to_browser = self._from_browser = -1
        if self._proc is not None:
            _kill_group(self._proc)
            self._proc = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self._work is not None:
            self._work.cleanup()
            self._work = None

    # -- protocol

    def _died(self) -> BrowserError:
        rc = self._proc.poll() if self._proc is not None else None
        detail = ""
        if self._stderr is not None:
            self._stderr.seek(0)
            detail = ": " + _one_line(self._stderr.read().decode("utf-8", errors="replace"))
        return BrowserError(f"chromium exited (code {rc}) in the middle of a DevTools session{detail}")

    def _receive(self, wait: float) -> dict[str, Any] | None:
        """The next message, or None when none came within ``wait`` seconds."""
        until = time.monotonic() + wait
        while b"\0" not in self._buffer:
            left = until - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self._from_browser], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise self._died()
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        if "method" in message:
            self._note(message)
        return message

    def _note(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        method, params = event["method"], event.get("params", {})
        if method == "Network.requestWillBeSent":
            url = str(params.get("request", {}).get("url", ""))
            self._requests[str(params.get("requestId"))] = url
            if not url.startswith(("file:", "data:", "blob:", "about:")):
                self.outside_requests.append(url)
        elif method == "Network.loadingFailed":
            url = self._requests.get(str(params.get("requestId")), "")
            if url.startswith("file:"):
                self.failed_files.append(url)
        elif method == "Target.attachedToTarget" and params.get("targetInfo", {}).get("type") == "iframe":
            self._frames[params["sessionId"]] = str(params["targetInfo"].get("url", ""))
        elif method == "Target.detachedFromTarget":
            self._frames.pop(params.get("sessionId", ""), None)

    def _send(self, method: str, params: dict[str, Any], session: str | None) -> dict[str, Any]:
        self._next_id += 1
        number = self._next_id
        message: dict[str, Any] = {"id": number, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        until = time.monotonic() + self._timeout

        def left() -> float:
            remaining = until - time.monotonic()
            if remaining <= 0:
                raise BrowserError(f"no answer to DevTools {method} within {self._timeout:g} s")
            return remaining

        while data:
            _, ready, _ = select.select([], [self._to_browser], [], min(left(), 1.0))
            if ready:
                try:
                    data = data[os.write(self._to_browser, data) :]
                except BrokenPipeError:
                    raise self._died() from None
        answer = None
        while answer is None or answer.get("id") != number:
            answer = self._receive(left())
        if "error" in answer:
            error = answer["error"]
            raise BrowserError(f"DevTools {method} failed: {error.get('message', error)}")
        result: dict[str, Any] = answer.get("result", {})
        return result

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """One DevTools command to the tab; its result (events meanwhile go to :attr:`events`)."""
        return self._send(method, params, self._page)

    def pump(self, seconds: float) -> None:
        """Let ``seconds`` pass while taking in events."""
        until = time.monotonic() + seconds
        while (left := until - time.monotonic()) > 0:
            self._receive(left)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (a promise is awaited)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text", "exception")
            raise BrowserError(f"JavaScript failed: {_one_line(str(text))}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, *, timeout: float = 15.0, what: str = "") -> None:
        """Poll the JavaScript ``expression`` until it is truthy (in JavaScript's sense: an element
        counts).  :class:`BrowserError` naming ``what`` after ``timeout`` seconds."""
        until = time.monotonic() + timeout
        while not self.evaluate(f"Boolean({expression})"):
            if time.monotonic() >= until:
                raise BrowserError(f"page never showed {what or expression} within {timeout:g} s")
            self.pump(0.1)

    def _wait_event(self, method: str, since: int, timeout: float) -> None:
        until = time.monotonic() + timeout
        while not any(e["method"] == method and e.get("sessionId") == self._page for e in self.events[since:]):
            left = until - time.monotonic()
            if left <= 0:
                raise BrowserError(f"no {method} within {timeout:g} s")
            self._receive(left)

    def open(
        self,
        url: str,
        *,
        ready: str,
        retry_if: str = "",
        retry_on_failed_file: bool = False,
        attempts: int = 3,
        timeout: float = 20.0,
    ) -> None:
        """Load ``url`` afresh and wait until the JavaScript ``ready`` is truthy.

        The tab goes to ``about:blank`` first, so a hash route is a full load with fresh page
        state, never a same-document jump.  The page is reloaded (:attr:`reloads` counts it), up
        to ``attempts`` loads in all, when the JavaScript ``retry_if`` turns truthy first, or with
        ``retry_on_failed_file`` when the page asked for a ``file:`` URL it did not get.
        """
        since = len(self.events)
        self.call("Page.navigate", url="about:blank")
        self._wait_event("Page.loadEventFired", since, timeout)
        why = ""
        for attempt in range(1, attempts + 1):
            since, failed = len(self.events), len(self.failed_files)
            if attempt == 1:
                answer = self.call("Page.navigate", url=url)
                if answer.get("errorText"):
                    raise BrowserError(f"could not open {url}: {answer['errorText']}")
            else:
                self.reloads += 1
                self.call("Page.reload", ignoreCache=True)
            self._wait_event("Page.loadEventFired", since, timeout)
            until = time.monotonic() + timeout
            why = ""
            while not why:
                state = self.evaluate(f"({ready}) ? 'ready' : ({retry_if or 'false'}) ? 'retry' : ''")
                if state == "ready":
                    return
                if state == "retry":
                    why = f"it showed {retry_if}"
                elif retry_on_failed_file and len(self.failed_files) > failed:
                    why = f"it could not load {self.failed_files[failed]}"
                elif time.monotonic() >= until:
                    raise BrowserError(f"page never showed {ready} within {timeout:g} s: {url} shows {self._shows()!r}")
                else:
                    self.pump(0.1)
        raise BrowserError(f"{url}: no good load in {attempts} ({why}); it shows {self._shows()!r}")

    def _shows(self, limit: int = 300) -> str:
        text = " ".join(str(self.evaluate("document.body ? document.body.innerText : ''")).split())
        return text if len(text) <= limit else text[: limit - 1] + "…"

    def click_each(self, expression: str, *, rounds: int = 40, settle: float = 0.1) -> int:
        """Click every element the JavaScript ``expression`` (an array or NodeList) yields, each
        element once, again and again until it yields no element not clicked yet (clicks reveal
        more: nested tree groups, nested steps).  The number of clicks."""
        script = f"""(() => {{
            const todo = [...({expression})].filter(e => !e.hasAttribute('data-browser-clicked'));
            todo.forEach(e => {{ e.setAttribute('data-browser-clicked', ''); e.click(); }});
            return todo.length;
        }})()"""
        clicks = 0
        for _ in range(rounds):
            done = int(self.evaluate(script))
            if not done:
                return clicks
            clicks += done
            self.pump(settle)
        raise BrowserError(f"still elements to click after {rounds} rounds: {expression}")

    def dom(self, selector: str = "") -> str:
        """The tab's DOM serialized; with ``selector``, only the first element it matches (a
        single-file page carries megabytes of inline data that nobody needs to read back)."""
        if not selector:
            return str(self.evaluate("document.documentElement.outerHTML"))
        html = self.evaluate(f"document.querySelector({json.dumps(selector)})?.outerHTML ?? null")
        if html is None:
            raise BrowserError(f"no element {selector!r} on the page")
        return str(html)

    def frame_documents(self) -> list[str]:
        """The DOM of each child frame that runs in a process of its own (a sandboxed iframe:
        the page itself cannot read it, the DevTools protocol can)."""
        documents = []
        for session in list(self._frames):
            try:
                root = self._send("DOM.getDocument", {"depth": -1}, session)["root"]
                documents.append(str(self._send("DOM.getOuterHTML", {"nodeId": root["nodeId"]}, session)["outerHTML"]))
            except BrowserError:
                continue  # detached meanwhile
        return documents


# --------------------------------------------------------------------------------------------
# Reading what a page shows


_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
)
_NOT_SHOWN = frozenset({"head", "script", "style", "template", "noscript", "title"})
_BLOCK = frozenset(
    {"address", "article", "aside", "blockquote", "body", "br", "dd", "details", "dialog", "div", "dl", "dt"}
    | {"fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr"}
    | {"html", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "tbody", "td", "tfoot", "th"}
    | {"thead", "tr", "ul", "iframe", "img"}
)


@dataclass
class Element:
    """An element of a parsed page: tag, attributes, children (elements and text)."""

    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[Element | str] = field(default_factory=list)

    def get(self, name: str, default: str = "") -> str:
        return self.attrs.get(name, default)

    def iter(self) -> Iterator[Element]:
        """This element and every element below it, in document order."""
        yield self
        for child in self.children:
            if isinstance(child, Element):
                yield from child.iter()

    def find_all(self, match: Callable[[Element], bool]) -> list[Element]:
        return [element for element in self.iter() if match(element)]

    def by_testid(self, testid: str) -> list[Element]:
        """Elements with ``data-testid="<testid>"`` (how Allure 3 marks its parts)."""
        return self.find_all(lambda e: e.get("data-testid") == testid)

    @property
    def hidden(self) -> bool:
        style = self.get("style").replace(" ", "").lower()
        return (
            self.tag in _NOT_SHOWN
            or "hidden" in self.attrs
            or self.get("aria-hidden") == "true"
            or "display:none" in style
            or "visibility:hidden" in style
        )

    def text(self) -> str:
        """The visible text below this element: one line per block, blanks squeezed."""
        parts: list[str] = []
        self._collect(parts)
        lines = (" ".join(line.split()) for line in "".join(parts).splitlines())
        return "\n".join(line for line in lines if line)

    def _collect(self, parts: list[str]) -> None:
        if self.hidden or self.tag == "svg":
            return
        edge = "\n" if self.tag in _BLOCK else " "  # inline neighbours: a space, as flex gaps show
        parts.append(edge)
        for child in self.children:
            if isinstance(child, Element):
                child._collect(parts)
            else:
                parts.append(child)
        parts.append(edge)


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document")
        self._open = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {name: value or "" for name, value in attrs})
        self._open[-1].children.append(element)
        if tag not in _VOID:
            self._open.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open[-1].children.append(Element(tag, {name: value or "" for name, value in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self._open) - 1, 0, -1):  # tolerate unclosed elements
            if self._open[depth].tag == tag:
                del self._open[depth:]
                return

    def handle_data(self, data: str) -> None:
        self._open[-1].children.append(data)


def parse_html(html: str) -> Element:
    """``html`` as an :class:`Element` tree (stdlib ``html.parser``)."""
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root


def visible_text(html: str | Element) -> str:
    """The text a reader sees: one line per block element; scripts, styles, ``<head>``, SVG and
    elements marked ``hidden``/``aria-hidden``/``display:none`` left out."""
    return (parse_html(html) if isinstance(html, str) else html).text()


# --------------------------------------------------------------------------------------------
# Allure results


def read_results(results_dir: Path) -> list[dict[str, Any]]:
    """Every ``*-result.json`` in ``results_dir``, each with ``"id"``: its Allure 3 test result id
    (``md5`` of the result's ``uuid``; the report opens it at ``index.html#/<id>``)."""
    results = []
    for path in sorted(Path(results_dir).glob("*-result.json")):
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        data["id"] = hashlib.md5(str(data["uuid"]).encode("utf-8")).hexdigest()
        results.append(data)
    return results


def result_ids(results_dir: Path, name: str) -> list[str]:
    """The test result ids of the results named ``name`` (exactly, or ``name — …`` as when a
    register is added to the title), sorted."""
    return sorted(
        result["id"]
        for result in read_results(results_dir)
        if result.get("name") == name or str(result.get("name", "")).startswith(f"{name} — ")
    )
