"""Weight initialisation as the reference code bases do it."""
from __future__ import annotations

from torch import nn


def init_weights(module: nn.Module, kind: str = "normal", gain: float = 0.02) -> nn.Module:
    """``normal``: pix2pix/CycleGAN ``init_type='normal'`` (conv/linear N(0, gain), BatchNorm
    weight N(1, gain), biases 0). ``xavier_linear``: the CVT-GAN/CvT scheme (Linear layers
    xavier-uniform with bias 0, LayerNorm/BatchNorm weight 1 and bias 0, convs left at the
    PyTorch default)."""
    for m in module.modules():
        if kind == "normal":
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                nn.init.normal_(m.weight, 0.0, gain)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d) and m.weight is not None:
                nn.init.normal_(m.weight, 1.0, gain)
                nn.init.zeros_(m.bias)
        elif kind == "xavier_linear":
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.LayerNorm, nn.BatchNorm2d)) and m.weight is not None:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        else:
            raise ValueError(f"unknown init {kind!r}")
    return module
