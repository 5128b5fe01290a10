"""The training engine: resume gives the same weights, NaN guard, stage reuse, data streams."""
import pytest
import torch
from torch import nn

from petbench import Method, Stage
from petbench.data.slices import TrainingData
from petbench.engine import train
from petbench.errors import TrainingDiverged
from petbench.testing.toys import TinyMethod

CPU = torch.device("cpu")


def tiny_data(n=24, size=8):
    g = torch.Generator().manual_seed(0)
    spet = torch.rand(n, 1, size, size, generator=g)
    lpet = spet + 0.2 * torch.randn(n, 1, size, size, generator=g)
    return TrainingData({"lpet": lpet, "spet": spet, "lpet_u": lpet, "spet_u": torch.rand(n + 5, 1, size, size)})


def make_method(**options):
    torch.manual_seed(0)
    return TinyMethod({"epochs": 3, "batch_size": 4, **options})


def weights(method):
    return {k: v.clone() for k, v in method.nets.state_dict().items()}


class Interrupt(Exception):
    pass


def test_resume_after_a_crash_gives_the_same_final_weights(tmp_path):
    reference = make_method()
    train(reference, reference.stages(), tiny_data(), seed=1, device=CPU, progress=False)

    crashing = make_method()
    stages = crashing.stages()
    original = stages[0].step

    def step_that_crashes_in_epoch_3(batch, ctx):
        if ctx.epoch == 2:
            raise Interrupt
        return original(batch, ctx)

    stages[0].step = step_that_crashes_in_epoch_3
    with pytest.raises(Interrupt):
        train(crashing, stages, tiny_data(), seed=1, device=CPU, checkpoint_dir=tmp_path, progress=False)
    assert (tmp_path / "last.pt").exists()

    resumed = make_method()  # a fresh process: new modules, same configuration
    reports = train(resumed, resumed.stages(), tiny_data(), seed=1, device=CPU, checkpoint_dir=tmp_path, progress=False)
    for key, value in weights(reference).items():
        torch.testing.assert_close(resumed.nets.state_dict()[key], value, rtol=0, atol=0)
    assert reports[0].steps == 3 * 6


def test_checkpoint_every_writes_mid_epoch_and_skips_epoch_ends(monkeypatch, tmp_path):
    """With an interval, a checkpoint is written at the first window end after it, mid-epoch or not."""
    import petbench.engine.trainer as trainer
    from petbench.engine.intervals import CheckpointEvery

    positions = []
    real = trainer.save
    monkeypatch.setattr(trainer, "save", lambda path, method, stages, position, *args, **kwargs:
                        positions.append((position.stage, position.epoch, position.step))
                        or real(path, method, stages, position, *args, **kwargs))
    method = make_method(epochs=3)  # 6 steps an epoch; windows end after steps 2, 4 and 6
    train(method, method.stages(), tiny_data(), seed=0, device=CPU, progress=False, sync_every=2,
          checkpoint_every=CheckpointEvery(steps=8), checkpoint_dir=tmp_path)
    # 8 steps: epoch 2 after its step 2, 8 more: epoch 3 after its step 4; then the stage's end
    assert positions == [(0, 1, 2), (0, 2, 4), (1, 0, 0)]


@pytest.mark.parametrize("crash_at", [4, 9, 13])
def test_a_crash_after_a_mid_epoch_checkpoint_resumes_bit_for_bit(tmp_path, crash_at):
    """Weights and the epochs' mean losses of a run resumed mid-epoch equal an uninterrupted run's."""
    from petbench.engine.intervals import CheckpointEvery

    every = CheckpointEvery(steps=3)
    reference = make_method()
    history = tmp_path / "reference.jsonl"
    train(reference, reference.stages(), tiny_data(), seed=1, device=CPU, progress=False, sync_every=1,
          checkpoint_every=every, history_path=history)
    crashing = make_method()
    stages = crashing.stages()
    original = stages[0].step

    def step_that_crashes(batch, ctx):
        if ctx.step_index == crash_at:
            raise Interrupt
        return original(batch, ctx)

    stages[0].step = step_that_crashes
    resumed_history = tmp_path / "resumed.jsonl"
    with pytest.raises(Interrupt):
        train(crashing, stages, tiny_data(), seed=1, device=CPU, checkpoint_dir=tmp_path / "ck", progress=False,
              sync_every=1, checkpoint_every=every, history_path=resumed_history)
    resumed = make_method()
    train(resumed, resumed.stages(), tiny_data(), seed=1, device=CPU, checkpoint_dir=tmp_path / "ck", progress=False,
          sync_every=1, checkpoint_every=every, history_path=resumed_history)
    for key, value in weights(reference).items():
        torch.testing.assert_close(resumed.nets.state_dict()[key], value, rtol=0, atol=0)

    def losses(path):
        return [(e["epoch"], e["losses"]) for e in map(__import__("json").loads, path.read_text().splitlines())]
    assert losses(resumed_history) == losses(history)


def generated_intervals(n=400, seed=0):
    """Strings near the grammar (digits, units, dots, signs, letters, spaces) and a few fixed ones."""
    import random

    rng = random.Random(seed)
    alphabet = "0123456789smhdEPOCHepoch.-+ x\u00e9\u0661"
    fixed = ["epoch", " EPOCH ", "0", "1", "500", "0s", "1.5m", "2h", "-1", "5d", "m", "", "1e3", "\u0661\u0662"]
    return fixed + ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6))) for _ in range(n)]


def test_checkpoint_every_accepts_epoch_steps_and_times_and_names_anything_else():
    from petbench.engine.intervals import CheckpointEvery, parse_checkpoint_every
    from petbench.errors import UserError

    for text in generated_intervals():
        value = text.strip().lower()
        try:
            parsed = parse_checkpoint_every(text)
        except UserError as exc:
            assert "--checkpoint-every" in str(exc) and "\n" not in str(exc), repr(text)
            assert not (value == "epoch" or (value.isascii() and value.isdigit() and int(value) >= 1)), repr(text)
            continue
        if value == "epoch":
            assert parsed == CheckpointEvery(), repr(text)
        elif parsed.steps is not None:
            assert parsed.steps == int(value) >= 1, repr(text)
        else:
            assert parsed.seconds == float(value[:-1]) * {"s": 1, "m": 60, "h": 3600}[value[-1]], repr(text)


def test_different_seeds_give_different_weights():
    a, b = make_method(), make_method()
    train(a, a.stages(), tiny_data(), seed=1, device=CPU, progress=False)
    train(b, b.stages(), tiny_data(), seed=2, device=CPU, progress=False)
    assert not torch.equal(a.nets["net"][0].weight, b.nets["net"][0].weight)


def test_nan_loss_stops_the_run_naming_stage_and_loss():
    method = make_method()
    stages = method.stages()
    original = stages[0].step

    def exploding(batch, ctx):
        losses = dict(original(batch, ctx))
        if ctx.step_index == 2:
            losses["l1"] = torch.tensor(float("nan"))
        return losses

    stages[0].step = exploding
    with pytest.raises(TrainingDiverged, match=r"stage 'supervised', epoch 1, step 3: loss l1 = nan"):
        train(method, stages, tiny_data(), seed=0, device=CPU, progress=False, sync_every=1)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("k,n", [(1, 4), (3, 4), (4, 4), (5, 4), (7, 3), (8, 50)])
def test_a_non_finite_loss_at_step_k_stops_the_run_by_step_k_plus_n(k, n, bad):
    """Losses are read every n steps (and at each epoch's end): a bad loss at step k (global, from 1)
    stops the run by step k + n, and the message names the window of steps that holds k."""
    method = make_method(epochs=3)  # 6 steps an epoch, 18 in all
    stages = method.stages()
    original, ran = stages[0].step, []

    def step(batch, ctx):
        ran.append(ctx.step_index + 1)
        losses = dict(original(batch, ctx))
        if ctx.step_index + 1 == k:
            losses["l1"] = losses["l1"] * bad  # stays a device tensor, never read here
        return losses

    stages[0].step = step
    with pytest.raises(TrainingDiverged) as caught:
        train(method, stages, tiny_data(), seed=0, device=CPU, progress=False, sync_every=n)
    assert k <= ran[-1] <= k + n
    # the window: windows restart at each epoch (6 steps), and end at a multiple of n or the epoch's end
    epoch, within = divmod(k - 1, 6)
    first = within // n * n + 1
    last = min(first + n - 1, 6)
    assert ran[-1] == epoch * 6 + last
    where = f"step {last}" if first == last else f"steps {first}-{last}"
    assert f"epoch {epoch + 1}, {where}: loss l1 = {bad}" in str(caught.value)


class Unread(torch.Tensor):
    """A loss that fails the test when read on its own (float, .item(), a Python branch on it)."""

    def __float__(self):
        pytest.fail("a loss was read to the host with float()")

    def item(self):
        pytest.fail("a loss was read to the host with .item()")

    def __bool__(self):
        pytest.fail("the engine branched on a loss's value")


def test_losses_are_not_read_to_the_host_between_sync_points(monkeypatch):
    """The only reads of the losses are one transfer per window of sync_every steps (and the epoch's end)."""
    import petbench.engine.losses as losses_module

    reads = []
    real = losses_module.to_host
    monkeypatch.setattr(losses_module, "to_host", lambda values: reads.append(len(values)) or real(values))
    method = make_method(epochs=2)  # 6 steps an epoch
    stages = method.stages()
    original = stages[0].step
    stages[0].step = lambda batch, ctx: {k: v.as_subclass(Unread) for k, v in original(batch, ctx).items()}
    train(method, stages, tiny_data(), seed=0, device=CPU, progress=False, sync_every=4)
    assert reads == [1, 2] * 2  # per epoch: the window after step 4; the window 5-6 with the epoch's sum


class TwoStage(Method):
    name = "two-stage"
    defaults = {"second_lr": 1e-2}

    def __init__(self, options=None, preset=None):
        super().__init__(options, preset)
        self.nets["encoder"] = nn.Conv2d(1, 1, 3, padding=1)
        self.nets["head"] = nn.Conv2d(1, 1, 3, padding=1)
        self.seen = []

    def stages(self):
        enc, head = self.nets["encoder"], self.nets["head"]
        opt1 = torch.optim.SGD(enc.parameters(), lr=1e-2)
        opt2 = torch.optim.SGD(head.parameters(), lr=self.options["second_lr"])

        def pretrain(batch, ctx):
            self.seen.append(set(batch))
            loss = (enc(batch["lpet_u"]) - batch["lpet_u"]).abs().mean()
            ctx.backward_step(loss, opt1)
            return {"rec": loss}

        def finetune(batch, ctx):
            self.seen.append(set(batch))
            loss = (head(enc(batch["lpet"]).detach()) - batch["spet"]).abs().mean()
            ctx.backward_step(loss, opt2)
            return {"l1": loss}

        return [Stage("pretrain", pretrain, {"sgd": opt1}, ("encoder",), sources=("unpaired_lpet", "unpaired_spet"),
                      epochs=2, batch_size=4, reuse_key={"stage": "pretrain"}),
                Stage("finetune", finetune, {"sgd": opt2}, ("head",), epochs=1, batch_size=4)]

    def predict(self, lpet):
        return self.nets["head"](self.nets["encoder"](lpet))


def test_stage_with_reuse_key_is_trained_once_and_shared(tmp_path):
    fingerprint = {"data": "tiny"}
    torch.manual_seed(0)
    first = TwoStage()
    train(first, first.stages(), tiny_data(), seed=0, device=CPU, stage_cache_dir=tmp_path,
          data_fingerprint=fingerprint, run_id="run-a", progress=False)
    torch.manual_seed(1)  # a different variant with different initial weights
    second = TwoStage({"second_lr": 1e-3})
    reports = train(second, second.stages(), tiny_data(), seed=0, device=CPU, stage_cache_dir=tmp_path,
                    data_fingerprint=fingerprint, run_id="run-b", progress=False)
    assert reports[0].reused_from == "run-a" and reports[1].reused_from is None
    torch.testing.assert_close(second.nets["encoder"].weight, first.nets["encoder"].weight)
    assert all(keys == {"lpet", "spet"} for keys in second.seen)  # pretrain did not run again

    other_seed = TwoStage()
    reports = train(other_seed, other_seed.stages(), tiny_data(), seed=5, device=CPU, stage_cache_dir=tmp_path,
                    data_fingerprint=fingerprint, progress=False)
    assert reports[0].reused_from is None


def test_batches_carry_the_keys_of_the_stage_sources():
    method = TwoStage()
    train(method, method.stages(), tiny_data(), seed=0, device=CPU, progress=False)
    assert method.seen[0] == {"lpet_u", "spet_u"}
    assert method.seen[-1] == {"lpet", "spet"}


def test_steps_per_epoch_bounds_an_epoch():
    method = make_method(steps_per_epoch=2)
    reports = train(method, method.stages(), tiny_data(), seed=0, device=CPU, progress=False)
    assert reports[0].steps == 3 * 2
