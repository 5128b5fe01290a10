"""What S3PET tells the tables: a reconstruction from the paper, and its token-swap reading in every note."""
from __future__ import annotations

from petbench.results.table_notes import options_part
from petbench.results.record import RunRecord
from petbench.runner import method_extras, preset_differences
from petbench_s3pet import S3PET, S3PETBaseline, S3PETDsMAE, S3PETDsMAEDKD


def note_of(method, preset="paper"):
    info = {"name": method.name, "options": method.options, "preset_differences": preset_differences(method, preset),
            **method_extras(method)}
    return options_part(RunRecord(None, {"method": info, "config": {"preset": preset}}))


def test_the_full_model_states_swap_decode_at_its_default_and_when_changed():
    assert method_extras(S3PET)["noted_options"] == ["swap_decode"]
    assert note_of(S3PET(preset="paper")) == "preset paper; swap_decode=transferred"
    assert note_of(S3PET({"swap_decode": "both"}, "paper")) == \
        "preset paper; swap_decode=both (preset: transferred)"


def test_the_variants_without_a_swap_do_not_state_it():
    for cls in (S3PETBaseline, S3PETDsMAE, S3PETDsMAEDKD):
        assert "noted_options" not in method_extras(cls)
        assert note_of(cls(preset="paper")) == ""
    assert note_of(S3PET({"variant": "dsmae"}, "paper")) == "preset paper; variant=dsmae (preset: full)"


def test_s3pet_is_declared_a_reconstruction_with_no_variant_mark():
    extras = method_extras(S3PET(preset="paper"))
    assert extras["provenance"] == "reconstruction" and "variant_note" not in extras
