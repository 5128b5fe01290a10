"""What the five baselines share: prediction in eval mode, Adam, the LR schedules, the stage."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from petbench import Method, Stage, adam
from petbench.options import Constraint, at_least, between, greater_than, one_of

from .blocks.precision import full_precision
from .option_checks import OptionChecker

#: The learning-rate schedules (per epoch; the engine steps ``Stage.schedulers`` once an epoch):
#: ``constant``; ``linear``: CycleGAN's ``lr_policy='lambda'`` (constant until ``decay_start``,
#: then linear to 0 at the last epoch); ``group``: PCCGAN's ``lr_adj.py`` (``lr -= lr/50`` every
#: epoch after ``decay_start``, i.e. x0.98 per epoch).
LR_DECAYS = ("constant", "linear", "group")

#: Which network a GAN step updates first: ``d_first`` as pix2pix's ``optimize_parameters`` and the
#: authoring group's ``GD_Train`` (one generator forward, D on the detached fake, then G against
#: the updated D); ``g_first`` as CycleGAN's (G against the current D, then D).
UPDATE_ORDERS = ("d_first", "g_first")


def in_order(order: str, update_g, update_d) -> dict:
    """Run the two updates of a GAN step in ``order``; returns both updates' losses."""
    first, second = (update_d, update_g) if order == "d_first" else (update_g, update_d)
    return {**first(), **second()}


def lr_factor(kind: str, epochs: int, start: int):
    if kind == "constant":
        return None
    if kind == "linear":
        span = max(epochs - start, 0) + 1
        return lambda epoch: 1.0 - max(0, epoch + 1 - start) / float(span)
    if kind == "group":
        return lambda epoch: 0.98 ** max(0, epoch + 1 - start)
    raise ValueError(f"unknown lr_decay {kind!r}; valid: {', '.join(LR_DECAYS)}")


def check_common(checker: OptionChecker) -> None:
    """What every baseline has: the optimiser, the schedule, the batch and the loss weights."""
    checker.positive("lr")
    checker.unit_interval("beta1", "beta2")
    checker.at_least(1, "epochs", "batch_size")
    checker.at_least(1, "steps_per_epoch", optional=True)
    checker.at_least(0, "decay_start", "pool_size", "crop_size")
    checker.non_negative(*[key for key in checker.options if key.startswith("lambda_")])
    checker.one_of("lr_decay", LR_DECAYS)
    checker.one_of("update_order", UPDATE_ORDERS)


def common_constraints(defaults: dict) -> dict[str, Constraint]:
    """The constraints of what every baseline has (as :func:`check_common`), declared for the host, which
    checks them before any work (petbench.options)."""
    declared = {"lr": greater_than(0), "beta1": between(0, 1, open_high=True), "beta2": between(0, 1, open_high=True),
                "epochs": at_least(1), "batch_size": at_least(1), "steps_per_epoch": at_least(1, optional=True, kind=int),
                "decay_start": at_least(0), "pool_size": at_least(0), "crop_size": at_least(0),
                "lr_decay": one_of(*LR_DECAYS), "update_order": one_of(*UPDATE_ORDERS),
                **{key: at_least(0) for key in defaults if key.startswith("lambda_")}}
    return {key: constraint for key, constraint in declared.items() if key in defaults}


def l1(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.l1_loss(full_precision(prediction), full_precision(target))


class BaselineMethod(Method):
    """A baseline: one generator used by ``predict``, trained by one stage."""

    #: the module of ``nets`` that maps LPET to SPET (its parameters are the method's count)
    generator: str = "G"

    def __init_subclass__(cls, **kwargs) -> None:
        """Each baseline declares the common constraints of its options, and may add its own
        (``option_constraints`` in its class body wins)."""
        super().__init_subclass__(**kwargs)
        cls.option_constraints = {**common_constraints(cls.defaults), **cls.__dict__.get("option_constraints", {})}

    def __init__(self, options=None, preset=None) -> None:
        super().__init__(options, preset)
        checker = OptionChecker(f"method {self.name!r}", self.options)
        check_common(checker)
        self.check_options(checker)

    def check_options(self, checker: OptionChecker) -> None:
        """A method's own checks on top of :func:`check_common` (widths, choices, ranges)."""

    def inference_modules(self) -> list[str]:
        return [self.generator]

    def generate(self, lpet: torch.Tensor) -> torch.Tensor:
        return self.nets[self.generator](lpet)

    def predict(self, lpet: torch.Tensor) -> torch.Tensor:
        """LPET slices ``[B, 1, H, W]`` -> SPET slices, in eval mode, clamped at 0 (the group's
        evaluator clips negative predictions to 0 too). Only the LPET is used."""
        modes = [(module, module.training) for module in self.nets.modules()]
        self.nets.eval()
        try:
            with torch.no_grad():
                out = self.generate(lpet.to(self.device, torch.float32))
        finally:
            for module, mode in modes:
                module.training = mode
        return out.float().clamp_min(0.0)

    # -- helpers for stages() -------------------------------------------------------------
    def adam(self, *modules: str, lr: float | None = None) -> torch.optim.Adam:
        """Adam over ``modules``' parameters, fused where their device allows (``petbench.adam``)."""
        o = self.options
        parameters = [p for name in modules for p in self.nets[name].parameters()]
        return adam(parameters, lr=o["lr"] if lr is None else lr, betas=(o["beta1"], o["beta2"]))

    def make_stage(self, step, optimizers: dict[str, torch.optim.Optimizer], modules: tuple[str, ...],
                   sources: tuple[str, ...], state: dict[str, Any] | None = None) -> Stage:
        o = self.options
        factor = lr_factor(o["lr_decay"], o["epochs"], o["decay_start"])
        schedulers: dict[str, Any] = {}
        if factor is not None:
            schedulers = {name: torch.optim.lr_scheduler.LambdaLR(opt, factor) for name, opt in optimizers.items()}
        return Stage(name="train", step=step, optimizers=optimizers, modules=modules, sources=sources,
                     epochs=o["epochs"], batch_size=o["batch_size"], steps_per_epoch=o["steps_per_epoch"],
                     schedulers=schedulers, state=state or {})


