"""The Pirit emulator's wire front-end (:class:`PiritFrontEnd`), one module per group of commands;
:mod:`.frontend` says how they fit together."""

from .frontend import PiritFrontEnd

__all__ = ["PiritFrontEnd"]
