"""Stage I: the dose-specific masked autoencoder (DsMAE), paper §III-A and Eq. 1.

A DsMAE is a masking module, a dose encoder (:class:`~petbench_s3pet.vit.DoseEncoder`) and a
light-weight linear decoder that predicts the pixels of the masked patches. The encoder and the
decoder head are separate modules so that Stage II can take the encoder alone.
"""
from __future__ import annotations

import torch
from torch import nn

from .losses import masked_l1
from .vit import DoseEncoder, patchify


def masked_count(num_patches: int, ratio: float) -> int:
    """How many of ``num_patches`` patches a mask ratio hides (at least one stays visible)."""
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"mask ratio must be in [0, 1), not {ratio}")
    return min(int(round(num_patches * ratio)), num_patches - 1)


def random_masking(batch: int, num_patches: int, ratio: float, device: torch.device | str = "cpu",
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """A ``[batch, num_patches]`` bool mask, True = masked, drawn independently per sample.

    Exactly ``masked_count(num_patches, ratio)`` patches are masked in every sample (MAE's
    per-sample shuffle: the patches with the largest uniform noise are hidden).
    """
    hidden = masked_count(num_patches, ratio)
    noise = torch.rand(batch, num_patches, device=device, generator=generator)
    ranks = noise.argsort(dim=1).argsort(dim=1)
    return ranks >= num_patches - hidden


class MaskedPatchHead(nn.Module):
    """The DsMAE parts besides the encoder: the learnable mask token and the linear decoder.

    The encoder sees every patch position, masked ones as the mask token (SimMIM-style), so a
    per-token linear layer can predict each masked patch from the context the blocks mixed in.
    """

    def __init__(self, dim: int, patch_size: int, in_channels: int = 1) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.mask_token = nn.Parameter(torch.zeros(dim))
        self.decoder = nn.Linear(dim, patch_size * patch_size * in_channels)
        nn.init.normal_(self.mask_token, std=0.02)
        nn.init.xavier_uniform_(self.decoder.weight)
        nn.init.zeros_(self.decoder.bias)

    def forward(self, encoder: DoseEncoder, images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Predicted patches ``[B, N, p*p*C]`` (all positions; the loss uses the masked ones)."""
        return self.decoder(encoder(images, mask=mask, mask_token=self.mask_token))


def dsmae_loss(encoder: DoseEncoder, head: MaskedPatchHead, images: torch.Tensor, ratio: float,
               loss_on: str = "masked") -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 1: L1 between the reconstructed and the input patches, on the masked patches
    (``loss_on="masked"``, as MAE/SimMIM) or on all of them (``"all"``). Returns (loss, mask)."""
    grid = encoder.grid(images)
    mask = random_masking(images.shape[0], grid[0] * grid[1], ratio, images.device)
    pred = head(encoder, images, mask)
    target = patchify(images, encoder.patch_size)
    return masked_l1(pred, target, mask if loss_on == "masked" else None), mask
