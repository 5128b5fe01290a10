"""Auto-Context CNN (Xiang et al., Neurocomputing 2017), LPET-only adaptation.

K fully convolutional modules are chained: module 1 sees the LPET, module k > 1 sees
``cat(LPET, S_{k-1})``, the previous module's estimate; each module is ``depth`` layers of
``Conv3x3(width) + ReLU`` (same padding, no pooling, optional BatchNorm) and a final
``Conv3x3(width -> 1)``. The loss is deep supervision, ``sum_k MSE(S_k, S)``; the prediction is
``S_K``. The original also feeds a T1 MRI channel and trains the modules one after another
(Caffe, SGD); ``detach_context=True`` stops gradients between modules, which emulates that.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .common import BaselineMethod

PAPER = {
    "modules": 4, "width": 64, "depth": 8, "batch_norm": False, "detach_context": False,
    "lr": 1e-4, "beta1": 0.9, "beta2": 0.999,
    "epochs": 100, "lr_decay": "constant", "decay_start": 0, "batch_size": 16, "steps_per_epoch": None,
}


def conv_module(in_channels: int, width: int, depth: int, batch_norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = in_channels
    for _ in range(depth):
        layers += [nn.Conv2d(channels, width, 3, padding=1, bias=not batch_norm)]
        layers += [nn.BatchNorm2d(width)] if batch_norm else []
        layers += [nn.ReLU()]
        channels = width
    layers.append(nn.Conv2d(channels, 1, 3, padding=1))
    return nn.Sequential(*layers)


class AutoContextNet(nn.Module):
    def __init__(self, modules: int = 4, width: int = 64, depth: int = 8, batch_norm: bool = False,
                 detach_context: bool = False) -> None:
        super().__init__()
        self.detach_context = detach_context
        self.stages = nn.ModuleList(conv_module(1 if k == 0 else 2, width, depth, batch_norm) for k in range(modules))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, lpet: torch.Tensor) -> list[torch.Tensor]:
        """Every module's estimate, the last one being the prediction."""
        estimates = []
        for k, stage in enumerate(self.stages):
            if k == 0:
                x = lpet
            else:
                previous = estimates[-1].detach() if self.detach_context else estimates[-1]
                x = torch.cat([lpet, previous], dim=1)
            estimates.append(stage(x))
        return estimates


class AutoContext(BaselineMethod):
    name = "autocontext"
    description = ("Auto-Context CNN (LPET-only): K chained fully convolutional modules, each seeing the LPET and "
                   "the previous estimate, with deep supervision.")
    defaults = dict(PAPER)
    presets = {
        "paper": dict(PAPER),
        "quick": {"modules": 3, "width": 16, "depth": 3, "lr": 1e-3, "epochs": 3, "batch_size": 8,
                  "steps_per_epoch": 120},
    }

    #: how tables should name it (recorded in the run record)
    paper_name = 'Auto-Context CNN (LPET-only)'
    #: the paper's name for it, and its row in Table I (positions: LPET 10 ... S3PET 70)
    display_name = "Auto-Context"
    table_places = {1: 30}
    provenance = "reconstruction"
    provenance_source = "Xiang et al., Neurocomputing 2017 (abstract; no public code)"
    variant_note = "LPET-only: the paper's T1 MRI input channel is dropped (the data have no MRI)"
    efficiency_place = 20  # in the label-efficiency grid
    #: tiny sizes for unit and conformance tests (petbench.testing)
    test_options = {"modules": 2, "width": 8, "depth": 2, "batch_size": 4}

    def check_options(self, checker):
        checker.at_least(1, "modules", "width", "depth")

    def __init__(self, options=None, preset=None):
        super().__init__(options, preset)
        o = self.options
        self.nets["G"] = AutoContextNet(o["modules"], o["width"], o["depth"], o["batch_norm"], o["detach_context"])

    def generate(self, lpet):
        return self.nets["G"](lpet)[-1]

    def stages(self):
        opt = self.adam("G")
        net = self.nets["G"]

        def step(batch, ctx):
            target = batch["spet"].float()
            estimates = net(batch["lpet"])
            per_module = [F.mse_loss(e.float(), target) for e in estimates]
            loss = torch.stack(per_module).sum()
            ctx.backward_step(loss, opt)
            out = {f"mse_{k + 1}": v.detach() for k, v in enumerate(per_module)}
            out["loss"] = loss.detach()
            return out

        return [self.make_stage(step, {"G": opt}, ("G",), ("paired",))]
