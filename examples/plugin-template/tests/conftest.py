"""Lets these tests run from a checkout before ``pip install -e .`` (the installed-entry-point test
then skips). petbench's own fixtures (``petbench_host``, ``petbench_cli``, ...) come from the pytest
plugin that petbench installs; nothing else is needed here."""
import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("petbench_plugin_template") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
