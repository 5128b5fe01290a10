"""Cycle-GAN's batched step (``step_batching`` ``merge`` / ``stack``) against the unbatched step, in float64.

Two copies of one tiny Cycle-GAN (same weights) take the same batches with the same random stream (the
image pool's draws); after every step their losses and every parameter's gradient must agree to 1e-12,
and so must their weights after the last step. The pool is small (2) and the batch 2, so the steps
cover the pool's filling and its swaps. Mutations tried: the identity term of the batched step taken
from the last slot (``out_g[-1]``), the two reconstructions' outputs swapped, and the D update's
real/fake halves swapped: each fails ``test_cyclegan_batched_step_equals_the_unbatched_step``.
"""
import pytest
import torch

from petbench_baselines.cyclegan import CycleGAN
from petbench_baselines.cyclegan_batched import Twins, batching_is_exact, effective_batching

from test_baselines_methods import TINY, context, structured_batch

STEPS = 4
TOLERANCE = 1e-12


@pytest.fixture
def float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def build(**options):
    torch.manual_seed(0)
    method = CycleGAN({**TINY["cyclegan"], "pool_size": 2, "batch_size": 2, **options})
    method.nets.double().train()
    return method, method.stages()[0]


def batches():
    for seed in range(STEPS):
        yield {k: v.double() for k, v in structured_batch(n=2, seed=seed).items()}


def grads(method):
    return {f"{net}.{name}": (p.grad.clone() if p.grad is not None else None)
            for net, module in method.nets.items() for name, p in module.named_parameters()}


def assert_close(a: dict, b: dict, what: str):
    assert a.keys() == b.keys(), what
    for key in a:
        if a[key] is None or b[key] is None:
            assert a[key] is None and b[key] is None, f"{what} {key}: one side has none"
            continue
        difference = float((a[key] - b[key]).abs().max()) if torch.is_tensor(a[key]) else abs(a[key] - b[key])
        assert difference <= TOLERANCE, f"{what} {key}: differs by {difference:.3g}"


@pytest.mark.parametrize("batching", ["merge", "stack"])
@pytest.mark.parametrize("options", [
    {},                                                          # the paper preset's structure (no norm)
    {"update_order": "d_first", "lambda_identity": 0.0},         # F's level-1 call without identity
    {"lambda_sup": 0.0, "slice_scale": "mean"},
])
def test_cyclegan_batched_step_equals_the_unbatched_step(float64, batching, options):
    reference, reference_stage = build(step_batching="none", **options)
    batched, batched_stage = build(step_batching=batching, **options)
    for step, batch in enumerate(batches()):
        torch.manual_seed(100 + step)
        expected = reference_stage.step(batch, context())
        torch.manual_seed(100 + step)
        got = batched_stage.step(batch, context())
        assert_close({k: float(v) for k, v in expected.items()}, {k: float(v) for k, v in got.items()},
                     f"step {step} loss")
        assert_close(grads(reference), grads(batched), f"step {step} gradient")
    assert_close(reference.nets.state_dict(), batched.nets.state_dict(), f"weights after {STEPS} steps")
    assert len(batched.pool_fake_spet) == 2  # the pool filled and then swapped


def test_norm_layers_keep_the_unbatched_step():
    """BatchNorm's statistics span the batch; InstanceNorm's null-gradient biases make Adam's weights
    follow rounding noise (see ``test_instancenorm_batching_matches_gradients_but_not_weights``)."""
    assert not batching_is_exact({"norm": "batch"}) and not batching_is_exact({"norm": "instance"})
    assert effective_batching({"norm": "batch", "step_batching": "stack"}) == "none"
    assert effective_batching({"norm": "instance", "step_batching": "merge"}) == "none"
    assert effective_batching({"norm": "none", "step_batching": "stack"}) == "stack"
    method, stage = build(norm="instance")
    assert stage.step.__name__ == "step" and stage.step.__qualname__.startswith("CycleGAN.stages")


def test_instancenorm_batching_matches_gradients_but_not_weights(float64):
    """Why InstanceNorm keeps the unbatched step: the merged call's losses and gradients agree to 1e-12,
    but the weights after a few Adam steps do not, only in the biases that InstanceNorm cancels."""
    from petbench_baselines.cyclegan_batched import batched_step

    reference, reference_stage = build(norm="instance", step_batching="none")
    merged, _ = build(norm="instance", step_batching="none")
    opt_g, opt_d = merged.stages()[0].optimizers.values()
    merged_step = batched_step(merged, opt_g, opt_d, "merge")
    for step, batch in enumerate(batches()):
        torch.manual_seed(100 + step)
        reference_stage.step(batch, context())
        torch.manual_seed(100 + step)
        merged_step(batch, context())
        if step == 0:
            assert_close(grads(reference), grads(merged), "gradient")
    differing = {key for key, value in reference.nets.state_dict().items()
                 if float((value - merged.nets.state_dict()[key]).abs().max()) > TOLERANCE}
    assert differing and differing <= biases_before_instancenorm(reference.nets)


def biases_before_instancenorm(nets) -> set[str]:
    """``net.path.bias`` of every convolution followed directly by an InstanceNorm."""
    found = set()
    for net, module in nets.items():
        for path, sequential in module.named_modules():
            if isinstance(sequential, torch.nn.Sequential):
                layers = list(sequential.named_children())
                for (name, layer), (_, after) in zip(layers, layers[1:]):
                    if isinstance(after, torch.nn.InstanceNorm2d) and getattr(layer, "bias", None) is not None:
                        found.add(f"{net}.{path + '.' if path else ''}{name}.bias")
    return found


def test_twins_refuse_networks_with_running_statistics():
    a, b = torch.nn.BatchNorm2d(2), torch.nn.BatchNorm2d(2)
    with pytest.raises(ValueError, match="buffers"):
        Twins(a, b)


def test_the_paper_preset_merges_its_calls():
    assert CycleGAN.presets["paper"]["step_batching"] == "merge"
    assert effective_batching(CycleGAN(preset="paper").options) == "merge"


def test_the_batched_paper_step_issues_at_least_40_percent_fewer_kernel_ops():
    """Kernel-issuing ATen ops (petbench.testing.kernel_ops) of one steady-state step of the paper
    preset's structure (6 residual blocks, 3-layer PatchGANs, batch 1, pool 50 filled; narrow widths and
    32² slices, which change no count): the merged and stacked steps against the unbatched one, with the
    same optimiser and pool. Mutation tried: the merged step's generator calls split back into one call
    per input (as unbatched): 1,036 against 1,078 ops, and the test fails."""
    from petbench import TrainContext
    from petbench.testing.kernel_ops import KernelOps

    counts = {}
    for batching in ("none", "merge", "stack"):
        torch.manual_seed(0)
        method = CycleGAN({"ngf": 4, "ndf": 4, "step_batching": batching}, preset="paper")
        stage = method.stages()[0]
        method.nets.train()
        batch = {k: v[:1] for k, v in structured_batch(n=1).items()}
        ctx = TrainContext(torch.device("cpu"), None, torch.amp.GradScaler(enabled=False))
        stage.step(batch, ctx)  # optimiser state
        for pool in (method.pool_fake_spet, method.pool_fake_lpet):
            while len(pool) < pool.size:
                pool.query(torch.rand(1, 1, 32, 32))
        with KernelOps() as ops:
            stage.step(batch, ctx)
        counts[batching] = ops.total
    assert counts["merge"] <= 0.6 * counts["none"], counts
    assert counts["stack"] < counts["merge"], counts
