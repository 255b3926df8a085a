"""Root conftest: make the kkt-hil plugin available even when the package is not installed.

When kkt-hil is installed (``make setup``), pytest loads the plugin through its ``pytest11``
entry point and this file adds nothing (loading it twice would be an error).
"""

from importlib.metadata import entry_points

if not any(ep.value == "harness.plugin" for ep in entry_points(group="pytest11")):
    pytest_plugins = ["harness.plugin"]
