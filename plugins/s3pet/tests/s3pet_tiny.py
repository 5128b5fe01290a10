"""Shared helpers: tiny S3PET configurations that run in milliseconds on a CPU.

(A uniquely named module, not conftest.py, so that it can be imported from the host's test run too.)"""
import torch

from petbench import TrainContext

#: a tiny model: every module is there, just narrow and shallow
TINY = {"embed_dim": 32, "num_heads": 2, "depth": 1, "decoder_channels": [16, 8, 8, 8],
        "stage1_batch_size": 4, "stage2_batch_size": 4, "stage1_epochs": 1, "stage2_epochs": 1}


def tiny(cls, seed=0, **options):
    torch.manual_seed(seed)
    return cls({**TINY, **options})


def context():
    return TrainContext(torch.device("cpu"), None, torch.amp.GradScaler(enabled=False))


def structured_batch(n=4, size=32, seed=0):
    """Paired slices with structure (smooth blobs) and a noisy low dose, plus unpaired ones."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")

    def blobs(count):
        images = torch.zeros(count, 1, size, size)
        for i in range(count):
            for _ in range(3):
                cy, cx = torch.rand(2, generator=g) * size
                width = 2 + 4 * torch.rand(1, generator=g)
                images[i, 0] += (0.5 + torch.rand(1, generator=g)) * torch.exp(
                    -((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * width ** 2))
        return images

    spet = blobs(n)
    lpet = (spet + 0.15 * torch.randn(spet.shape, generator=g)).clamp_min(0)
    return {"lpet": lpet, "spet": spet, "lpet_u": lpet.clone(), "spet_u": blobs(n)}
