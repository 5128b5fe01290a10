"""A tiny structured dataset and a tiny trainable method: small enough for unit tests on a CPU,
structured enough that training measurably helps (smooth hot blobs, Poisson low dose)."""
from __future__ import annotations

import types

import numpy as np
import torch
from torch import nn

from .. import Dataset, Method, Stage, Subject, hookimpl
from ..data.nifti import affine_from_spacing
from ..plugins import PluginHost, get_plugin_manager


class TinyDataset(Dataset):
    name = "tiny"
    description = "Tiny synthetic volumes of Gaussian blobs with Poisson low dose (for tests)."
    defaults = {"n_subjects": 12, "size": 16, "depth": 8, "counts": 200.0, "seed": 0}
    drfs = (2, 4, 10)
    units = "a.u."

    def subject_ids(self):
        return [f"tiny{i:03d}" for i in range(self.options["n_subjects"])]

    def load(self, subject_id, drfs=()):
        index = int(subject_id.removeprefix("tiny"))
        rng = np.random.default_rng([self.options["seed"], index])
        size, depth = self.options["size"], self.options["depth"]
        z, y, x = np.meshgrid(np.arange(depth), np.arange(size), np.arange(size), indexing="ij")
        spet = np.full((depth, size, size), 0.1, np.float32)
        for _ in range(3):
            centre = rng.uniform([0, 2, 2], [depth, size - 2, size - 2])
            width = rng.uniform(1.5, 3.5)
            spet += rng.uniform(0.5, 2.0) * np.exp(-((z - centre[0]) ** 2 + (y - centre[1]) ** 2
                                                     + (x - centre[2]) ** 2) / (2 * width ** 2))
        lpet = {}
        for drf in drfs:
            counts = self.options["counts"] / drf
            lpet[drf] = (rng.poisson(spet * counts) / counts).astype(np.float32)
        return Subject(id=subject_id, spet=spet.astype(np.float32), lpet=lpet,
                       affine=affine_from_spacing((2.0, 2.0, 2.0)), units=self.units)


class TinyMethod(Method):
    name = "tiny-cnn"
    description = "A three-layer residual CNN trained with L1 on paired slices (for tests)."
    defaults = {"epochs": 2, "batch_size": 8, "lr": 3e-3, "width": 8, "steps_per_epoch": 0}
    presets = {"paper": {"epochs": 4}, "quick": {}}

    def __init__(self, options=None, preset=None):
        super().__init__(options, preset)
        width = self.options["width"]
        self.nets["net"] = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(),
                                         nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                                         nn.Conv2d(width, 1, 3, padding=1))

    def stages(self):
        net = self.nets["net"]
        optimizer = torch.optim.Adam(net.parameters(), lr=self.options["lr"])

        def step(batch, ctx):
            loss = (self.forward(batch["lpet"]) - batch["spet"]).abs().mean()
            ctx.backward_step(loss, optimizer)
            return {"l1": loss}

        return [Stage("supervised", step, {"adam": optimizer}, modules=("net",), epochs=self.options["epochs"],
                      batch_size=self.options["batch_size"], steps_per_epoch=self.options["steps_per_epoch"] or None)]

    def forward(self, lpet):
        return lpet + self.nets["net"](lpet)

    def predict(self, lpet):
        return self.forward(lpet).clamp_min(0)


def isolated_host(*plugins: object, builtins: bool = True) -> PluginHost:
    """A plugin host with no entry-point plugins: the built-ins (optional) plus ``plugins``.

    Each plugin is a module or an object with hook implementations; ``TinyDataset`` and
    ``TinyMethod`` are available through :data:`TOY_PLUGIN`.
    """
    host = get_plugin_manager(entrypoints=False, builtins=builtins)
    for index, plugin in enumerate(plugins):
        host.add(plugin, name=getattr(plugin, "__name__", f"test-plugin-{index}"))
    return host


@hookimpl(specname="register_datasets")
def _register_tiny_dataset(register):
    register(TinyDataset)


@hookimpl(specname="register_methods")
def _register_tiny_method(register):
    register(TinyMethod)


TOY_PLUGIN = types.SimpleNamespace(__name__="petbench-toys", register_datasets=_register_tiny_dataset,
                                   register_methods=_register_tiny_method)
