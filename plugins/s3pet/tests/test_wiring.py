"""Wiring: each loss scores the right tensors, each stage optimises the right modules, gradients
reach what they should. Expected values are written out here (numpy, or the modules called one
by one), not taken from the code under test.

Each test below was checked by breaking the wiring on purpose (one mutation at a time, then
restored); the mutation and the test that failed on it:

- Eq. 1's L1 over all patches (``masked_l1(pred, target, None)`` in ``dsmae_loss``, or the default
  ``stage1_loss_on="all"``) -> ``test_stage1_step_is_eq1_on_its_own_doses_masked_patches``
- ``enc_lpet`` or ``enc_spet`` left out of Stage II's optimiser -> ``test_each_stage_optimises_exactly_its_modules``
- the auxiliary L1 scored against SPET instead of LPET -> ``test_reconstruction_terms_score_each_branch_against_its_dose``
- the SPET DsMAE trained on LPET (``batch["lpet_u"]`` for both doses, or ``unpaired_lpet`` as its
  source) -> ``test_stage1_step_is_eq1_on_its_own_doses_masked_patches``
- the two mask ratios swapped -> ``test_stage1_step_is_eq1_on_its_own_doses_masked_patches``
- a stop-gradient on s_ds (``to_spet.specific.detach()``) -> ``test_spet_specific_tokens_learn_through_the_transfer_loss``
"""
import numpy as np
import pytest
import torch
from s3pet_tiny import context, structured_batch, tiny

from petbench_s3pet import S3PET, S3PETBaseline, S3PETDsMAE, S3PETDsMAEDKD
from petbench_s3pet.dsmae import random_masking
from petbench_s3pet.losses import js_divergence

STAGE2_MODULES = {
    "full": {"enc_lpet", "enc_spet", "proj_inv", "proj_spec_lpet", "proj_spec_spet", "transfer", "dec_spet",
             "dec_lpet"},
    "dsmae-dkd": {"enc_lpet", "enc_spet", "proj_inv", "proj_spec_lpet", "proj_spec_spet", "dec_spet", "dec_lpet"},
    "dsmae": {"enc_lpet", "dec_spet"},
    "baseline": {"enc_lpet", "dec_spet"},
}


def numpy_patches(images: np.ndarray, p: int) -> np.ndarray:
    """[B, 1, H, W] -> [B, N, p*p], row-major patch order (written out independently of vit.patchify)."""
    b, _, h, w = images.shape
    out = np.empty((b, (h // p) * (w // p), p * p), dtype=np.float64)
    for i in range(h // p):
        for j in range(w // p):
            out[:, i * (w // p) + j] = images[:, 0, i * p:(i + 1) * p, j * p:(j + 1) * p].reshape(b, -1)
    return out


def stage(method, name):
    return next(s for s in method.stages() if s.name == name)


@pytest.mark.parametrize("dose, ratio", [("lpet", 0.75), ("spet", 0.5)])
def test_stage1_step_is_eq1_on_its_own_doses_masked_patches(dose, ratio):
    """Eq. 1 for one DsMAE: mean |prediction - input| over the masked patches only, on that dose's
    unpaired slices, masked at that dose's rate (LPET 0.75 > SPET 0.5)."""
    method = tiny(S3PET)
    batch = structured_batch()
    assert not torch.equal(batch["lpet_u"], batch["spet_u"])
    st = stage(method, f"stage1-{dose}")
    assert st.sources == (f"unpaired_{dose}",)
    images = batch[f"{dose}_u"]
    encoder, head = method.nets[f"enc_{dose}"], method.nets[f"mae_head_{dose}"]
    method.nets.train()
    torch.manual_seed(11)
    n = (images.shape[-1] // 8) ** 2
    mask = random_masking(images.shape[0], n, ratio)  # the draw the step will make with this seed
    assert mask.sum(1).tolist() == [round(n * ratio)] * images.shape[0]
    with torch.no_grad():
        pred = head(encoder, images, mask).double().numpy()
    error = np.abs(pred - numpy_patches(images.double().numpy(), 8)).mean(-1)
    m = mask.numpy()
    expected = (error * m).sum() / m.sum()
    torch.manual_seed(11)
    returned = float(st.step(batch, context())["loss"])
    assert returned == pytest.approx(expected, rel=1e-5)
    assert abs(error.mean() - expected) > 1e-4  # all patches would give another value: the test can tell


@pytest.mark.parametrize("variant", list(STAGE2_MODULES))
def test_each_stage_optimises_exactly_its_modules(variant):
    method = tiny(S3PET, variant=variant)
    for st in method.stages():
        expected = ({f"enc_{st.name[7:]}", f"mae_head_{st.name[7:]}"} if st.name.startswith("stage1")
                    else STAGE2_MODULES[variant])
        assert set(st.modules) == expected, st.name
        in_optimiser = {id(p) for group in st.optimizers["adam"].param_groups for p in group["params"]}
        wanted = {id(p) for name in expected for p in method.nets[name].parameters()}
        assert in_optimiser == wanted, (st.name, {n for n in expected
                                                  if not {id(p) for p in method.nets[n].parameters()} <= in_optimiser})


def test_every_trained_module_changes_in_a_stage2_step():
    method = tiny(S3PET, stage2_lr=1e-2)
    batch = structured_batch()
    method.nets.train()
    before = {name: [p.detach().clone() for p in method.nets[name].parameters()] for name in STAGE2_MODULES["full"]}
    stage(method, "stage2").step(batch, context())
    for name, old in before.items():
        assert any(not torch.equal(a, b) for a, b in zip(old, method.nets[name].parameters())), name


@pytest.mark.parametrize("cls", [S3PET, S3PETDsMAEDKD])
def test_reconstruction_terms_score_each_branch_against_its_dose(cls):
    """Eq. 4: the auxiliary branch's L1 against the real LPET, the main branch's against SPET."""
    method = tiny(cls)
    batch = structured_batch()
    lpet, spet = batch["lpet"], batch["spet"]
    method.nets.train()  # BatchNorm on batch statistics: the same output on every call
    with torch.no_grad():
        losses = method.stage2_losses(lpet, spet)
        out = method.bilateral_forward(lpet, spet)
    aux = np.abs(out["lpet_syn"].double().numpy() - lpet.double().numpy()).mean()
    main = np.abs(out["rpet"].double().numpy() - spet.double().numpy()).mean()
    assert float(losses["rec_aux"]) == pytest.approx(aux, rel=1e-5)
    assert float(losses["rec_main"]) == pytest.approx(main, rel=1e-5)
    swapped_aux = np.abs(out["lpet_syn"].double().numpy() - spet.double().numpy()).mean()
    assert abs(swapped_aux - aux) > 1e-3  # scoring against the other dose would show


@pytest.mark.parametrize("cls", [S3PETBaseline, S3PETDsMAE])
def test_variants_without_dkd_score_only_the_main_branch(cls):
    method = tiny(cls, gamma=2.0, lambda2=3.0)
    batch = structured_batch()
    method.nets.train()
    with torch.no_grad():
        losses = method.stage2_losses(batch["lpet"], batch["spet"])
        out = method.bilateral_forward(batch["lpet"], batch["spet"])
    main = np.abs(out["rpet"].double().numpy() - batch["spet"].double().numpy()).mean()
    assert float(losses["loss"]) == pytest.approx(3.0 * 2.0 * main, rel=1e-5)


def test_spet_specific_tokens_learn_through_the_transfer_loss():
    """s_ds is swapped out of the main branch; its only gradient is the transfer loss (Eq. 3). A
    stop-gradient there would leave the SPET-specific projector untrained."""
    method = tiny(S3PET)
    batch = structured_batch()
    method.stage2_losses(batch["lpet"], batch["spet"])["transfer"].backward()
    for name in ("proj_spec_spet", "enc_spet", "transfer", "proj_spec_lpet", "enc_lpet"):
        grads = [p.grad for p in method.nets[name].parameters() if p.grad is not None]
        assert grads and sum(float(g.abs().sum()) for g in grads) > 0, name
    method.nets.zero_grad(set_to_none=True)
    method.stage2_losses(batch["lpet"], batch["spet"])["loss"].backward()
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in method.nets["proj_spec_spet"].parameters())


# -- swap_decode ------------------------------------------------------------------------------
def decode_by_hand(method, invariant, specific, grid):
    fused = torch.cat([invariant, specific], -1).transpose(1, 2).reshape(invariant.shape[0], -1, *grid)
    return method.nets["dec_spet"](fused)


@pytest.mark.parametrize("mode", ["transferred", "swapped", "both"])
def test_swap_decode_chooses_what_the_main_branch_decodes(mode):
    method = tiny(S3PET, swap_decode=mode)
    batch = structured_batch()
    lpet, spet = batch["lpet"], batch["spet"]
    method.nets.train()
    with torch.no_grad():
        out = method.bilateral_forward(lpet, spet)
        losses = method.stage2_losses(lpet, spet)
        grid = method.nets["enc_lpet"].grid(lpet)
        l_tok, s_tok = out["lpet_tokens"], out["spet_tokens"]
        transferred = decode_by_hand(method, l_tok.invariant, method.nets["transfer"](l_tok.specific), grid)
        swapped = decode_by_hand(method, l_tok.invariant, s_tok.specific, grid)
    terms = []
    if mode in ("transferred", "both"):
        torch.testing.assert_close(out["rpet"], transferred)
        terms.append(np.abs(transferred.double().numpy() - spet.double().numpy()).mean())
    else:
        assert "rpet" not in out
    if mode in ("swapped", "both"):
        torch.testing.assert_close(out["rpet_swapped"], swapped)
        terms.append(np.abs(swapped.double().numpy() - spet.double().numpy()).mean())
    else:
        assert "rpet_swapped" not in out
    assert float(losses["rec_main"]) == pytest.approx(np.mean(terms), rel=1e-5)
    method.nets.eval()  # prediction always decodes the transferred tokens (there is no SPET)
    with torch.no_grad():
        expected = decode_by_hand(method, method.nets["proj_inv"](method.nets["enc_lpet"](lpet)),
                                  method.nets["transfer"](method.nets["proj_spec_lpet"](method.nets["enc_lpet"](lpet))),
                                  grid)
    torch.testing.assert_close(method.predict(lpet), expected.clamp_min(0))


@pytest.mark.parametrize("mode, reaches", [("transferred", False), ("swapped", True), ("both", True)])
def test_swapped_decoding_ties_spet_specific_tokens_to_the_image(mode, reaches):
    """Only when the main branch decodes s_ds does the reconstruction loss reach the SPET-specific projector."""
    method = tiny(S3PET, swap_decode=mode)
    batch = structured_batch()
    method.stage2_losses(batch["lpet"], batch["spet"])["rec_main"].backward()
    grads = [p.grad for p in method.nets["proj_spec_spet"].parameters()]
    assert (any(g is not None and float(g.abs().sum()) > 0 for g in grads)) == reaches


# -- the JS blind spots and the guard -----------------------------------------------------------
def test_js_is_blind_to_per_token_shifts_and_constant_tokens_the_l1_guard_is_not():
    torch.manual_seed(0)
    a = torch.randn(2, 6, 8)
    shift = torch.randn(2, 6, 1) * 3  # one constant per token, added to all its features
    assert js_divergence(a, a + shift).item() < 1e-6
    assert js_divergence(torch.zeros(2, 6, 8), torch.full((2, 6, 8), 5.0)).item() < 1e-6
    method = tiny(S3PET, token_l1=2.0)
    batch = structured_batch()
    method.nets.train()
    with torch.no_grad():
        losses = method.stage2_losses(batch["lpet"], batch["spet"])
        out = method.bilateral_forward(batch["lpet"], batch["spet"])
        plain = tiny(S3PET).stage2_losses(batch["lpet"], batch["spet"])
    guard = (np.abs(out["lpet_tokens"].invariant.double().numpy() - out["spet_tokens"].invariant.double().numpy()).mean()
             + np.abs(out["spet_specific"].double().numpy() - out["spet_specific_pred"].double().numpy()).mean())
    assert float(losses["token_l1"]) == pytest.approx(guard, rel=1e-5)
    assert float(losses["loss"]) == pytest.approx(float(plain["loss"]) + 2.0 * guard, rel=1e-5)
    assert "token_l1" not in plain  # off by default: the paper's losses alone


# -- option checks (a bad value is a UserError naming the option, raised in __init__) ------------
@pytest.mark.parametrize("key, value", [
    ("stage2_lr", -1.0), ("stage1_lr", 0.0), ("stage2_batch_size", 0), ("stage1_batch_size", -2),
    ("stage2_epochs", 0), ("stage1_epochs", 0), ("betas", [0.9]), ("betas", [0.9, 1.0]), ("betas", [-0.1, 0.9]),
    ("mask_ratio_lpet", 1.5), ("mask_ratio_spet", -0.1), ("mask_ratio_lpet", 0.0), ("mask_ratio_spet", 1.0), ("js_tau", 0.0), ("gamma", -1.0), ("lambda1", -0.5),
    ("lambda2", float("nan")), ("token_l1", -1.0), ("depth", 0), ("num_heads", 0), ("transfer_hidden", -1),
    ("stage2_steps_per_epoch", 0), ("decoder_channels", [8, 8, 0, 8]), ("swap_decode", "sideways"),
])
def test_bad_option_values_are_user_errors_naming_the_option(key, value):
    from petbench import UserError

    with pytest.raises(UserError, match=key):
        S3PET({key: value})


@pytest.mark.parametrize("option", ["stage2_lr=-1", "stage2_batch_size=0", "betas=[0.9]", "stage2_epochs=0",
                                    "mask_ratio_lpet=1.5", "mask_ratio_lpet=0", "mask_ratio_spet=1",
                                    "patch_size=64", "patch_size=12", "patch_size=true", "betas={'a': 1}"])
def test_a_bad_option_on_the_command_line_is_one_error_line_and_no_record(tmp_path, option):
    from typer.testing import CliRunner

    import petbench_s3pet.plugin
    from petbench.cli import create_app
    from petbench.testing import isolated_host
    from petbench.testing.toys import TOY_PLUGIN

    results = tmp_path / "results"
    argv = ["run", "--method", "s3pet", "--dataset", "tiny", "--n-train", "2", "--n-test", "1", "--n-unpaired", "2",
            "--drf", "4", "--preset", "quick", "-q", "-D", "size=32", "-D", "depth=4", "-o", option,
            "--results", str(results)]
    result = CliRunner().invoke(create_app(isolated_host(TOY_PLUGIN, petbench_s3pet.plugin)), argv)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and option.split("=")[0] in errors[0] and "Traceback" not in result.output
    assert not (results.exists() and list(results.rglob("run.json")))
