"""The CycleGAN image pool: the discriminator sees a history of generated images.

Until the pool holds ``size`` images, every new image is stored and returned. Afterwards each
new image is, with probability 1/2, returned as is, or swapped for a random stored one (which
is returned; the new one takes its place). ``size == 0`` returns the input unchanged. The draws
use torch's global RNG, so the host's seeding makes them reproducible. The pool is training
state outside ``nets``: it is not checkpointed, and a resumed run starts it empty.
"""
from __future__ import annotations

import torch


class ImagePool:
    def __init__(self, size: int) -> None:
        self.size = int(size)
        self.images: list[torch.Tensor] = []

    def __len__(self) -> int:
        return len(self.images)

    # The pool is training state: a stage declares it (``Stage(state={"pool": pool})``) so the engine
    # checkpoints it and a resumed run draws the same fakes as an uninterrupted one.
    def state_dict(self) -> dict:
        return {"images": [image.clone() for image in self.images]}

    def load_state_dict(self, state: dict) -> None:
        self.images = [image.clone() for image in state["images"]]

    def query(self, images: torch.Tensor) -> torch.Tensor:
        images = images.detach()
        if self.size <= 0:
            return images
        out = []
        for image in images:
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand(()).item() > 0.5:
                index = int(torch.randint(0, self.size, ()).item())
                out.append(self.images[index].clone())
                self.images[index] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, dim=0)
