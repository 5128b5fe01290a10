"""docs/writing-plugins.md documents every hook (datasette's test_plugin_hooks_are_documented):
a ``### name(arguments)`` section per hook spec, with the spec's current arguments, and no section
for a hook that does not exist."""
import inspect
import re
from pathlib import Path

import pytest

from petbench import hookspecs

DOC = Path(__file__).resolve().parents[1] / "docs" / "writing-plugins.md"
HOOKS = {name: fn for name, fn in vars(hookspecs).items() if callable(fn) and hasattr(fn, "petbench_spec")}


def hook_sections() -> dict[str, str]:
    """``### name(args)`` heading -> the section's text, in the "Hooks" part of the document."""
    text = DOC.read_text(encoding="utf-8")
    hooks_part = text.split("\n## Hooks\n", 1)[1].split("\n## ", 1)[0]
    parts = re.split(r"^### (\w+\([^)]*\))\s*$", hooks_part, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def test_there_are_hooks():
    assert {"register_methods", "register_datasets", "register_metrics", "register_commands", "run_finished"} <= set(HOOKS)


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_plugin_hooks_are_documented(name):
    heading = f"{name}({', '.join(inspect.signature(HOOKS[name]).parameters)})"
    sections = hook_sections()
    assert heading in sections, f"docs/writing-plugins.md has no section '### {heading}' under '## Hooks'"
    body = sections[heading]
    assert "@hookimpl" in body and "```python" in body, f"the section on {name} needs an example"
    for argument in inspect.signature(HOOKS[name]).parameters:
        assert f"`{argument}`" in body, f"the section on {name} does not explain its argument {argument!r}"


def test_no_section_documents_a_hook_that_does_not_exist():
    documented = {heading.partition("(")[0] for heading in hook_sections()}
    assert documented <= set(HOOKS), f"documented but not a hook spec: {sorted(documented - set(HOOKS))}"
