"""``python -m harness.cli``: the same as the ``kkt-hil`` command."""

from . import main

raise SystemExit(main())
