"""Each baseline says what it is: a port of published code, a reconstruction from the paper, a library."""
from __future__ import annotations

import pytest

from petbench.method import PROVENANCES
from petbench.runner import method_extras
from petbench_baselines import plugin

EXPECTED = {"cyclegan": "port", "cvtgan": "port", "autocontext": "reconstruction", "argan": "reconstruction",
            "semipet": "reconstruction", "gaussian": "library", "nlm": "library", "bm3d": "library"}


@pytest.mark.parametrize("cls", plugin.METHODS + plugin.CLASSICAL, ids=lambda c: c.name)
def test_every_method_declares_its_provenance_and_source(cls):
    extras = method_extras(cls)
    assert extras["provenance"] == EXPECTED[cls.name] and extras["provenance"] in PROVENANCES
    assert extras["provenance_source"]


def test_the_variants_declare_their_footnotes():
    assert "LPET-only" in method_extras(plugin.AutoContext)["variant_note"]
    two_d = {method_extras(cls)["variant_note"] for cls in (plugin.ARGAN, plugin.CVTGAN)}
    assert len(two_d) == 1 and "2D" in two_d.pop()  # one text: one shared mark
    assert "variant_note" not in method_extras(plugin.SemiPET)
    assert "variant_note" not in method_extras(plugin.CycleGAN(preset="reference"))
