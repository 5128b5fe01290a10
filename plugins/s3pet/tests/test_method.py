"""The methods: variants, options, presets, stages, losses going down, checkpoints, prediction."""
import importlib.metadata

import pytest
import torch
from s3pet_tiny import TINY, context, structured_batch, tiny

import petbench_s3pet.plugin
from petbench import Method, UserError
from petbench.testing import isolated_host
from petbench_s3pet import METHODS, S3PET, S3PETBaseline, S3PETDsMAE, S3PETDsMAEDKD, VARIANTS
from petbench_s3pet.losses import js_divergence

NAMES = {"s3pet": "full", "s3pet-baseline": "baseline", "s3pet-dsmae": "dsmae", "s3pet-dsmae-dkd": "dsmae-dkd"}


# -- registration, variants, options ---------------------------------------------------------
def test_plugin_registers_the_four_methods_through_the_public_hook():
    host = isolated_host(petbench_s3pet.plugin)
    assert set(NAMES) <= set(host.methods.names())
    for name in NAMES:
        assert issubclass(host.methods.get(name), Method)
    assert not host.failures


def test_entry_point_in_the_petbench_group():
    points = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="petbench")}
    assert points.get("s3pet") == "petbench_s3pet.plugin"


@pytest.mark.parametrize("cls", METHODS)
def test_variant_by_name_equals_variant_by_option(cls):
    variant = NAMES[cls.name]
    by_name, by_option = tiny(cls), tiny(S3PET, variant=variant)
    assert by_name.components == by_option.components == VARIANTS[variant] == cls.components
    assert list(by_name.nets) == list(by_option.nets)
    for (ka, a), (kb, b) in zip(by_name.nets.state_dict().items(), by_option.nets.state_dict().items()):
        assert ka == kb and torch.equal(a, b)
    assert [s.name for s in by_name.stages()] == [s.name for s in by_option.stages()]


def test_components_and_stages_per_variant():
    expected = {
        "baseline": (["stage2"], {"enc_lpet", "dec_spet"}),
        "dsmae": (["stage1-lpet", "stage2"], {"enc_lpet", "mae_head_lpet", "dec_spet"}),
        "dsmae-dkd": (["stage1-lpet", "stage1-spet", "stage2"],
                      {"enc_lpet", "enc_spet", "mae_head_lpet", "mae_head_spet", "proj_inv", "proj_spec_lpet",
                       "proj_spec_spet", "dec_spet", "dec_lpet"}),
    }
    expected["full"] = (expected["dsmae-dkd"][0], expected["dsmae-dkd"][1] | {"transfer"})
    for variant, (stages, modules) in expected.items():
        method = tiny(S3PET, variant=variant)
        assert [s.name for s in method.stages()] == stages
        assert set(method.nets) == modules
        assert "mae_head_lpet" not in method.stages()[-1].modules  # Stage II fine-tunes, the MAE heads stay


def test_bad_options_are_user_errors():
    with pytest.raises(UserError, match="variant"):
        S3PET({"variant": "everything"})
    with pytest.raises(UserError, match="s3pet-baseline"):
        S3PETDsMAE({"variant": "baseline"})
    with pytest.raises(UserError, match="patch_size"):
        S3PET({"patch_size": 6})
    with pytest.raises(UserError, match="mask_ratio_lpet"):
        S3PET({"mask_ratio_lpet": 1.0})
    with pytest.raises(UserError, match="js_axis"):
        S3PET({"js_axis": "batch"})


def test_paper_preset_is_the_papers_schedule():
    options = S3PET(preset="paper").options
    assert (options["stage1_epochs"], options["stage2_epochs"]) == (300, 100)
    assert options["stage1_batch_size"] == options["stage2_batch_size"] == 32
    assert options["stage1_lr"] == options["stage2_lr"] == 2e-4
    assert options["depth"] == 4
    assert (options["gamma"], options["lambda1"], options["lambda2"]) == (1.0, 1.0, 5.0)
    stages = S3PET(preset="paper").stages()
    assert all(isinstance(opt, torch.optim.Adam) for s in stages for opt in s.optimizers.values())
    quick = S3PET(preset="quick").stages()
    assert all(s.steps_per_epoch for s in quick)


def test_stage1_reuse_key_depends_on_stage1_config_only():
    keys = {v: [s.reuse_key for s in tiny(S3PET, variant=v).stages()[:-1]] for v in VARIANTS}
    assert keys["baseline"] == []
    assert keys["dsmae"] == keys["full"][:1]
    assert keys["dsmae-dkd"] == keys["full"]
    assert keys["full"][0] != keys["full"][1]  # the two DsMAEs are different stages
    assert tiny(S3PET, lambda2=1.0, stage2_epochs=7, transfer_hidden=8).stages()[0].reuse_key == keys["full"][0]
    assert tiny(S3PET, mask_ratio_lpet=0.6).stages()[0].reuse_key != keys["full"][0]
    assert tiny(S3PET, mask_ratio_lpet=0.6).stages()[1].reuse_key == keys["full"][1]
    assert tiny(S3PET, stage1_epochs=3).stages()[1].reuse_key != keys["full"][1]
    assert all(s.reuse_key is None for s in (tiny(S3PET).stages()[-1], tiny(S3PETBaseline).stages()[0]))


def test_stage1_initial_weights_do_not_depend_on_the_variant():
    full, dsmae = tiny(S3PET, seed=3), tiny(S3PETDsMAE, seed=3)
    for name in ("enc_lpet", "mae_head_lpet"):
        for a, b in zip(full.nets[name].state_dict().values(), dsmae.nets[name].state_dict().values()):
            assert torch.equal(a, b)


# -- the bilateral network ------------------------------------------------------------------
def test_one_invariant_projector_serves_both_doses(batch):
    method = tiny(S3PET)
    nets = method.nets
    assert sum("inv" in name for name in nets) == 1
    assert nets["proj_spec_lpet"] is not nets["proj_spec_spet"]
    out = method.bilateral_forward(batch["lpet"], batch["spet"])
    e_l, e_s = nets["enc_lpet"](batch["lpet"]), nets["enc_spet"](batch["spet"])
    torch.testing.assert_close(out["lpet_tokens"].invariant, nets["proj_inv"](e_l))
    torch.testing.assert_close(out["spet_tokens"].invariant, nets["proj_inv"](e_s))
    # the alignment loss trains the one projector from both doses' sides
    js_divergence(out["lpet_tokens"].invariant, out["spet_tokens"].invariant).backward()
    for name in ("proj_inv", "enc_lpet", "enc_spet"):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in nets[name].parameters()), name
    assert all(p.grad is None for p in nets["proj_spec_lpet"].parameters())


def test_branches_decode_the_swapped_tokens(batch):
    method = tiny(S3PET)
    method.nets.eval()
    nets = method.nets
    with torch.no_grad():
        out = method.bilateral_forward(batch["lpet"], batch["spet"])
        grid = nets["enc_lpet"].grid(batch["lpet"])
        l_tok, s_tok = out["lpet_tokens"], out["spet_tokens"]
        synth = nets["dec_lpet"](torch.cat([s_tok.invariant, l_tok.specific], -1).transpose(1, 2).reshape(4, -1, *grid))
        rpet = nets["dec_spet"](torch.cat([l_tok.invariant, nets["transfer"](l_tok.specific)], -1)
                                .transpose(1, 2).reshape(4, -1, *grid))
    torch.testing.assert_close(out["lpet_syn"], synth)
    torch.testing.assert_close(out["rpet"], rpet)
    assert out["spet_specific"] is s_tok.specific
    torch.testing.assert_close(method.predict(batch["lpet"]), rpet.clamp_min(0))


def test_stage2_loss_is_eq5(batch):
    method = tiny(S3PET, gamma=2.0, lambda1=3.0, lambda2=5.0)
    losses = method.stage2_losses(batch["lpet"], batch["spet"])
    expected = losses["align"] + 3.0 * losses["transfer"] + 5.0 * (losses["rec_aux"] + 2.0 * losses["rec_main"])
    torch.testing.assert_close(losses["loss"], expected)
    assert set(tiny(S3PETDsMAEDKD).stage2_losses(batch["lpet"], batch["spet"])) == \
        {"loss", "align", "rec_aux", "rec_main"}
    assert set(tiny(S3PETBaseline).stage2_losses(batch["lpet"], batch["spet"])) == {"loss", "rec_main"}


# -- training ------------------------------------------------------------------------------
def evaluate(fn, seed=123):
    torch.manual_seed(seed)  # the same masks before and after
    with torch.no_grad():
        return float(fn())


@pytest.mark.parametrize("cls", [S3PET, S3PETBaseline, S3PETDsMAEDKD])
def test_a_few_steps_lower_each_stages_loss(cls):
    method = tiny(cls, stage1_lr=3e-3, stage2_lr=3e-3)
    batch = structured_batch()
    ctx = context()
    for stage in method.stages():
        for name in stage.modules:
            method.nets[name].train()
        if stage.name.startswith("stage1"):
            dose = stage.name.split("-")[1]
            loss = lambda: method.stage1_loss(dose, batch[f"{dose}_u"])  # noqa: E731
        else:
            loss = lambda: method.stage2_losses(batch["lpet"], batch["spet"])["loss"]  # noqa: E731
        before = evaluate(loss)
        for _ in range(15):
            returned = stage.step(batch, ctx)
            assert all(torch.isfinite(torch.as_tensor(v)) for v in returned.values())
        after = evaluate(loss)
        assert after < 0.8 * before, (stage.name, before, after)


def test_checkpoint_round_trip(tmp_path, batch):
    method = tiny(S3PET)
    stages = method.stages()
    ctx = context()
    for stage in stages:
        stage.step(batch, ctx)
    path = tmp_path / "ckpt.pt"
    torch.save({"nets": method.nets.state_dict(),
                "optimizers": {s.name: s.optimizers["adam"].state_dict() for s in stages}}, path)
    restored = tiny(S3PET, seed=99)
    assert not torch.equal(restored.predict(batch["lpet"]), method.predict(batch["lpet"]))
    saved = torch.load(path, weights_only=True)
    restored.nets.load_state_dict(saved["nets"])
    restored_stages = restored.stages()
    for stage in restored_stages:
        stage.optimizers["adam"].load_state_dict(saved["optimizers"][stage.name])
    torch.testing.assert_close(restored.predict(batch["lpet"]), method.predict(batch["lpet"]), rtol=0, atol=0)
    # one more identical step from both gives identical weights (optimiser state came back too)
    torch.manual_seed(5)
    stages[-1].step(batch, ctx)
    torch.manual_seed(5)
    restored_stages[-1].step(batch, ctx)
    for a, b in zip(method.nets.state_dict().values(), restored.nets.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


# -- prediction ----------------------------------------------------------------------------
@pytest.mark.parametrize("cls", METHODS)
def test_predict_needs_only_lpet(cls, batch):
    method = tiny(cls)
    expected = method.predict(batch["lpet"])
    assert expected.shape == batch["lpet"].shape and (expected >= 0).all()
    used = set(method.inference_modules())
    assert not used & {"enc_spet", "dec_lpet", "proj_spec_spet", "mae_head_lpet", "mae_head_spet"}
    with torch.no_grad():  # poison everything prediction must not touch
        for name, module in method.nets.items():
            if name not in used:
                for p in module.parameters():
                    p.fill_(float("nan"))
    torch.testing.assert_close(method.predict(batch["lpet"]), expected)
    assert method.parameter_count() == sum(p.numel() for n in used for p in method.nets[n].parameters())


def test_predict_handles_other_sizes_and_keeps_training_mode():
    method = tiny(S3PET)
    method.nets.train()
    for size in (16, 32, 64, 40):
        out = method.predict(torch.rand(3, 1, size, size))
        assert out.shape == (3, 1, size, size)
    assert all(m.training for m in method.nets.values())


def test_cosine_schedule_is_sized_by_the_engine_and_constant_leaves_the_rate():
    for schedule, expected in (("cosine", [1e-3, 5e-4, 0.0]), ("constant", [1e-3, 1e-3, 1e-3])):
        method = tiny(S3PETBaseline, lr_schedule=schedule, stage2_lr=1e-3, stage2_epochs=2,
                      stage2_steps_per_epoch=2)
        stage = method.stages()[-1]
        assert stage.schedulers_per == "step"
        optimizer = stage.optimizers["adam"]
        factory = stage.schedulers.get("cosine")
        assert (factory is not None) == (schedule == "cosine")
        scheduler = factory(4) if factory else None  # the engine passes epochs x the real steps per epoch
        seen = []
        for index in range(5):
            if index in (0, 2, 4):
                seen.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            if scheduler:
                scheduler.step()
        assert seen == pytest.approx(expected, abs=1e-12)


