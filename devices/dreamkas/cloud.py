"""The Dreamkas cloud (Кабинет) as the harness reaches it: registered as ``kkt_hil.clouds`` ``dreamkas``.

The hub emulator (:mod:`devices.dreamkas.hub`), its partner/admin client
(:mod:`devices.dreamkas.hub_client`) and the fisGo link that makes an emulated Касса Ф /
Дримкас-Ф / Старт poll it (:mod:`devices.dreamkas.fisgo`) — imported only when used.
"""

from __future__ import annotations

from typing import Any


class DreamkasCloud:
    name = "dreamkas"
    title = "Дримкас Кабинет"

    def serve_hub(self, host: str = "127.0.0.1", port: int = 0, *, allow_lan: bool = False) -> Any:
        from .hub import Hub, serve

        return serve(Hub(), host, port, allow_lan=allow_lan)

    def admin(self, url: str) -> Any:
        from .hub_client import AdminClient

        return AdminClient(url)

    def attach(self, emulator: Any, url: str, *, poll_interval: float | None = None) -> Any:
        from .fisgo import DEFAULT_POLL_INTERVAL, attach_fisgo

        return attach_fisgo(emulator, url, poll_interval=poll_interval or DEFAULT_POLL_INTERVAL)


CLOUD = DreamkasCloud()
