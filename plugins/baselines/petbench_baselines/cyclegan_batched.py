"""Cycle-GAN's training step with few network calls: the same losses and gradients, fewer launches.

Upstream's step (``CycleGANModel.optimize_parameters``, and :mod:`.cyclegan`'s unbatched step) calls
the networks 13 times at batch 1: G four times (LPET, fake LPET, SPET for the identity, the paired
LPET), F three times, each discriminator twice in the D update and once in G's. Every call is a few
dozen small kernels, so a batch-1 step on a GPU waits on launches, not arithmetic. The calls that do
not depend on each other can share one call:

- level 1: G on ``[real_L; real_S; L_paired]`` (fake SPET, identity, supervised), F on
  ``[real_S; real_L]`` (fake LPET, identity);
- level 2: F on fake SPET and G on fake LPET (the reconstructions);
- G's adversarial terms: D_S on fake SPET, D_L on fake LPET (discriminators frozen);
- the D update: D_S on ``[real_S; pooled fake SPET]``, D_L on ``[real_L; pooled fake LPET]``.

``step_batching="merge"`` (the default) makes those eight calls (one per network per level).
``"stack"`` also runs each pair of twin networks (G with F, D_S with D_L: the same architecture) as
one call, ``torch.func.functional_call`` under ``vmap`` over their parameters stacked for the step
(``torch.stack`` keeps autograd to each network's own parameters, so the optimisers, state-dict keys
and checkpoints are unchanged): four calls. Level 1 has three inputs for G and two for F when both
the identity and the supervised term are on; F's third slot is then a zero image whose output is not
used. ``stack`` issues about 10 % fewer kernel-issuing ops than ``merge`` but, as counted by
``torch.utils.flop_counter``, 51 % more FLOPs: 13 % more in the forward (the zero slot) and 70 % more
in the backward (vmap's convolution backward does work the unbatched one skips; we did not isolate
which). ``merge`` does exactly the unbatched step's arithmetic, so it is the default until a GPU
says which is faster (``benchmarks/gpu_launch_check.py`` times all three).

Both are exact for the paper preset, which has no norm layers: every layer (convolutions, reflection
padding, ReLU, LeakyReLU) treats the samples of a batch independently, and the float64 test
``test_cyclegan_batched_step_equals_the_unbatched_step`` finds losses, gradients and the weights after
several steps equal to the unbatched step's within 1e-12. With InstanceNorm (``norm="instance"``,
upstream's norm) losses and gradients agree as closely, but the weights do not: the bias of a
convolution followed by InstanceNorm has a true gradient of 0 (the norm removes the mean), so its
computed gradient is rounding noise, and Adam, which divides by the gradient's own running size,
turns noise of 1e-17 into steps of the learning rate's order whose sign follows the noise. Any change
of summation order then moves those biases (they change no output). With BatchNorm the statistics
span the batch, so a merged call is not the same computation at all. Both keep the unbatched step
(``batching_is_exact``).
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.func import functional_call, vmap

from .blocks import gan_loss, set_requires_grad
from .common import in_order, l1

STEP_BATCHINGS = ("stack", "merge", "none")


def batching_is_exact(options: dict) -> bool:
    """Whether the batched step reproduces the unbatched one (losses, gradients and weights): only
    without norm layers (see the module's docstring for InstanceNorm and BatchNorm)."""
    return options["norm"] == "none"


def effective_batching(options: dict) -> str:
    """The batching a step uses: the requested one, or ``none`` where it would not be exact."""
    return options["step_batching"] if batching_is_exact(options) else "none"


class Twins:
    """Two networks of one architecture called as one (``torch.func`` over their stacked parameters).

    ``self(x_a, x_b)`` returns ``(a(x_a), b(x_b))`` with one call of a parameterless copy of ``a``
    under ``vmap``. The parameters are stacked at each call, so gradients reach ``a``'s and ``b``'s
    own parameters, and a frozen network (``requires_grad=False``) stays frozen. The networks must
    have no buffers (no running statistics) and no randomness (no dropout)."""

    def __init__(self, a: nn.Module, b: nn.Module) -> None:
        if [n for n, _ in a.named_parameters()] != [n for n, _ in b.named_parameters()]:
            raise ValueError("twin networks must have the same parameters")
        if any(True for _ in a.buffers()) or any(True for _ in b.buffers()):
            raise ValueError("twin networks must have no buffers (running statistics)")
        self.a, self.b = a, b
        self.skeleton = copy.deepcopy(a).to("meta")  # structure only; parameters come with each call
        self.call = vmap(lambda params, x: functional_call(self.skeleton, params, (x,)))

    def stacked(self) -> dict[str, torch.Tensor]:
        """The two networks' parameters stacked (one tensor per parameter, twin ``a`` first)."""
        return {name: torch.stack([p, q]) for (name, p), q in zip(self.a.named_parameters(), self.b.parameters())}

    def __call__(self, x_a: torch.Tensor, x_b: torch.Tensor,
                 params: dict[str, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(a(x_a), b(x_b))``; ``params`` from :meth:`stacked` serves several calls between two updates."""
        self.skeleton.train(self.a.training)
        out = self.call(self.stacked() if params is None else params, torch.stack([x_a, x_b]))
        return out[0], out[1]


def pad_to(blocks: list[torch.Tensor], n: int) -> list[torch.Tensor]:
    return blocks + [torch.zeros_like(blocks[0])] * (n - len(blocks))


def batched_step(method, opt_g, opt_d, batching: str):
    """Cycle-GAN's step (:mod:`.cyclegan`'s ``step`` without crops), with ``batching`` ``merge`` or ``stack``."""
    o = method.options
    G, F, D_S, D_L = (method.nets[k] for k in ("G", "F", "D_S", "D_L"))
    supervised, identity = o["lambda_sup"] > 0, o["lambda_identity"] > 0
    if batching == "stack":
        twins, discriminators = Twins(G, F), Twins(D_S, D_L)

        def generators(x_g, x_f, params):
            return twins(x_g, x_f, params)
    else:
        def generators(x_g, x_f, params):
            return G(x_g), F(x_f)

        def discriminators(x_s, x_l):
            return D_S(x_s), D_L(x_l)

    def step(batch, ctx):
        real_l, real_s = batch["lpet_u"], batch["spet_u"]
        n = real_l.shape[0]
        to_g = [real_l] + ([real_s] if identity else []) + ([batch["lpet"]] if supervised else [])
        to_f = [real_s] + ([real_l] if identity else [])
        if batching == "stack":
            width = max(len(to_g), len(to_f))
            to_g, to_f = pad_to(to_g, width), pad_to(to_f, width)
        # G and F change only at G's update, after both of their calls: one stack of their parameters serves both
        params = twins.stacked() if batching == "stack" else None
        out_g, out_f = generators(torch.cat(to_g), torch.cat(to_f), params)
        out_g, out_f = out_g.split(n), out_f.split(n)
        fake_s, fake_l = out_g[0], out_f[0]

        def update_g():  # generators, with the discriminators frozen
            set_requires_grad([D_S, D_L], False)
            rec_s, rec_l = generators(fake_l, fake_s, params)
            logits_s, logits_l = discriminators(fake_s, fake_l)
            loss_gan = gan_loss(logits_s, True) + gan_loss(logits_l, True)
            loss_cycle = o["lambda_cycle"] * (l1(rec_l, real_l) + l1(rec_s, real_s))
            loss_g = loss_gan + loss_cycle
            losses = {"G_gan": loss_gan.detach(), "cycle": loss_cycle.detach()}
            if identity:
                loss_idt = o["lambda_identity"] * (l1(out_g[1], real_s) + l1(out_f[1], real_l))
                loss_g = loss_g + loss_idt
                losses["identity"] = loss_idt.detach()
            if supervised:
                loss_sup = l1(out_g[2 if identity else 1], batch["spet"])
                loss_g = loss_g + o["lambda_sup"] * loss_sup
                losses["sup_l1"] = loss_sup.detach()
            ctx.backward_step(loss_g, opt_g)
            set_requires_grad([D_S, D_L], True)
            return losses

        def update_d():  # discriminators, on pooled (detached) fakes
            pooled_s = method.pool_fake_spet.query(fake_s)
            pooled_l = method.pool_fake_lpet.query(fake_l)
            logits_s, logits_l = discriminators(torch.cat([real_s, pooled_s]), torch.cat([real_l, pooled_l]))
            (real_logits_s, fake_logits_s), (real_logits_l, fake_logits_l) = logits_s.split(n), logits_l.split(n)
            loss_d_s = 0.5 * (gan_loss(real_logits_s, True) + gan_loss(fake_logits_s, False))
            loss_d_l = 0.5 * (gan_loss(real_logits_l, True) + gan_loss(fake_logits_l, False))
            ctx.backward_step(loss_d_s + loss_d_l, opt_d)
            return {"D_S": loss_d_s.detach(), "D_L": loss_d_l.detach()}

        return in_order(o["update_order"], update_g, update_d)

    return step
