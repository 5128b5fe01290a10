"""``template-cnn``: a small residual CNN trained with an L1 loss on paired slices.

Replace the network and the loss with your own; keep the shape of the class: options with
defaults, ``paper``/``quick`` presets, ``test_options`` for the conformance check, networks in
``self.nets``, training as ``Stage``s that the host runs, and a ``predict`` that maps normalised
LPET slices ``[B, 1, H, W]`` to non-negative SPET slices of the same shape.
"""
from __future__ import annotations

import torch
from torch import nn

from petbench import Method, Stage, TrainContext


class ResidualCNN(nn.Module):
    def __init__(self, width: int, depth: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(1, width, 3, padding=1), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
        layers.append(nn.Conv2d(width, 1, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, lpet: torch.Tensor) -> torch.Tensor:
        return lpet + self.body(lpet)  # learn the correction of the low-dose input


class TemplateCNN(Method):
    name = "template-cnn"
    description = "Template plugin: a small residual CNN trained with L1 on paired LPET/SPET slices."

    #: every option with its default (``-o key=value`` on the command line is checked against these)
    defaults = {"width": 32, "depth": 5, "lr": 1e-3, "epochs": 50, "batch_size": 16,
                "steps_per_epoch": None}  # None: every slice once per epoch
    #: ``paper``: the full schedule (picked on a GPU); ``quick``: minutes on a CPU (picked on a CPU)
    presets = {"paper": {}, "quick": {"width": 16, "epochs": 3, "steps_per_epoch": 50}}
    #: the smallest configuration, used on top of ``quick`` by ``petbench check`` and petbench.testing
    test_options = {"width": 4, "depth": 3, "epochs": 1, "batch_size": 4, "steps_per_epoch": 2}

    def __init__(self, options=None, preset=None):
        super().__init__(options, preset)  # resolves self.options and creates self.nets
        self.nets["net"] = ResidualCNN(self.options["width"], self.options["depth"])

    def stages(self) -> list[Stage]:
        # Called once per run after self.nets is on the training device: build optimisers here.
        optimizer = torch.optim.Adam(self.nets["net"].parameters(), lr=self.options["lr"])

        def step(batch: dict, ctx: TrainContext) -> dict:
            loss = (self.nets["net"](batch["lpet"]) - batch["spet"]).abs().mean()
            ctx.backward_step(loss, optimizer)  # zero grads, backward (scaled under fp16), step
            return {"l1": loss}

        return [Stage("supervised", step, {"adam": optimizer}, modules=("net",), sources=("paired",),
                      epochs=self.options["epochs"], batch_size=self.options["batch_size"],
                      steps_per_epoch=self.options["steps_per_epoch"])]

    @torch.no_grad()
    def predict(self, lpet: torch.Tensor) -> torch.Tensor:
        self.nets.eval()
        return self.nets["net"](lpet).clamp_min(0)  # PET activity is non-negative
