"""The operator: the hands of the lab where no actuator exists (paper, cover, swapping a ФН).

A scenario on a lab register says ``lab.paper("out")``; with no paper actuator the lab asks the
operator, waits (with a deadline) for the answer, and then checks on the device that it shows
what was asked (status says no paper) before it goes on.  Who the operator is comes from the
inventory entry or ``--operator``:

* ``tty`` — a person at the terminal (``/dev/tty``): the prompt is printed, Enter confirms, ``n``
  declines; no terminal → the scenario is skipped with the reason.
* ``none`` — nobody: every request is skipped with the reason.  CI never blocks.
* ``tcp://127.0.0.1:PORT`` — a scripted operator (the stand-in's): one JSON object per line,
  ``{"action": "paper", "args": {"state": "out"}, "text": "…"}`` → ``{"ok": true}`` or
  ``{"ok": false, "error": "…"}``.

Actions and their arguments (the vocabulary a scripted operator implements): ``paper``
{state, after_lines?}, ``cover`` {open}, ``fn_setup`` {activated?, registrations_done?},
``firmware`` {version}, ``power`` {state: off | on | cycle}, ``fn_restore`` {} (put the lab's own
ФН back after a test that asked for a prepared one).
"""

from __future__ import annotations

import json
import os
import select
import socket
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

from .errors import HarnessError, NeedsRealTimeOrOperator, UsageError
from .net import check_loopback, parse_tcp_url

DEFAULT_ANSWER_TIMEOUT = 120.0  # seconds a person gets to do what was asked


class Operator(Protocol):
    description: str

    def ask(self, action: str, text: str, **args: Any) -> None:
        """Have ``action`` done; LabUnavailable when nobody can, HarnessError when it was declined."""


class NoOperator:
    description = "no operator"

    def __init__(self, why: str = "у стенда нет оператора (--operator none)") -> None:
        self.why = why

    def ask(self, action: str, text: str, **args: Any) -> None:
        raise NeedsRealTimeOrOperator(f"«{text}»: нужен оператор — {self.why}")


@dataclass
class TtyOperator:
    """A person at the terminal."""

    timeout: float = DEFAULT_ANSWER_TIMEOUT
    path: str = "/dev/tty"
    description: str = "operator at the terminal"

    def ask(self, action: str, text: str, **args: Any) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_NOCTTY)
        except OSError:
            raise NeedsRealTimeOrOperator(f"«{text}»: нужен оператор, а терминала нет (--operator tty)") from None
        with open(fd, "r+", encoding="utf-8", closefd=True) as tty:
            self._prompt(tty, text)
            ready, _, _ = select.select([tty], [], [], self.timeout)
            if not ready:
                tty.write("\n")
                raise NeedsRealTimeOrOperator(f"«{text}»: оператор не ответил за {self.timeout:g} с")
            answer = tty.readline().strip().lower()
        if answer in ("n", "no", "н", "нет"):
            raise HarnessError(f"the operator declined: «{text}»")

    @staticmethod
    def _prompt(tty: TextIO, text: str) -> None:
        tty.write(f"\n[kkt-hil] ОПЕРАТОР: {text}\n          Enter — готово, n — отказаться: ")
        tty.flush()


class RemoteOperator:
    """A scripted operator over one JSON line per request (loopback TCP)."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        host, port = parse_tcp_url(url)
        check_loopback(host)
        self._address = (host, port)
        self._timeout = timeout
        self.description = f"scripted operator {url}"

    def ask(self, action: str, text: str, **args: Any) -> None:
        request = json.dumps({"action": action, "args": args, "text": text}, ensure_ascii=False) + "\n"
        try:
            with socket.create_connection(self._address, timeout=self._timeout) as sock:
                sock.settimeout(self._timeout)
                sock.sendall(request.encode("utf-8"))
                with sock.makefile("rb") as answers:
                    line = answers.readline()
        except OSError as exc:
            raise NeedsRealTimeOrOperator(f"«{text}»: оператор-скрипт {self.description} недоступен: {exc}") from None
        try:
            reply = json.loads(line.decode("utf-8")) if line else {}
        except (UnicodeDecodeError, json.JSONDecodeError):
            reply = {}
        if not isinstance(reply, dict) or not reply:
            raise NeedsRealTimeOrOperator(f"«{text}»: оператор-скрипт не ответил")
        if not reply.get("ok"):
            raise HarnessError(f"the operator could not do «{text}»: {reply.get('error', reply)}")


def make_operator(kind: str | None, *, timeout: float = DEFAULT_ANSWER_TIMEOUT) -> Operator:
    """``tty`` | ``none`` | ``tcp://127.0.0.1:PORT`` → an operator.  ``tty`` talks to the process's
    controlling terminal (``/dev/tty``, also under pytest's capture); a run without one (CI) gets
    a skip with the reason at the first request, never a blocked read."""
    choice = (kind or "none").strip()
    if choice == "none":
        return NoOperator()
    if choice == "tty":
        return TtyOperator(timeout=timeout)
    if choice.startswith("tcp://"):
        try:
            return RemoteOperator(choice)
        except ValueError as exc:
            raise UsageError(f"operator {choice!r}: {exc}") from None
    raise UsageError(f"operator must be tty, none or tcp://127.0.0.1:PORT, not {choice!r}")
