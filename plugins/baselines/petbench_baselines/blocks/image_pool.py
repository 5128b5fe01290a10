"""The CycleGAN image pool: the discriminator sees a history of generated images.

The rule is upstream's (``junyanz/pytorch-CycleGAN-and-pix2pix``, ``util/image_pool.py``), image by
image in batch order: until the pool holds ``size`` images, every new image is stored and returned.
Afterwards each new image is, with probability 1/2, returned as is, or swapped for a stored one drawn
uniformly (the stored one is returned, the new one takes its slot). ``size == 0`` returns the input.

It runs on the images' device without a host round trip: the pool is one preallocated tensor of
``size`` slots, the coin flips and slots are drawn on the device (torch's generator of that device,
so the host's seeding makes them reproducible), and the swap is a ``where`` between the new image
and the drawn slot, written back in place. So a step that queries it can be captured as a CUDA
graph. Whether a slot is still empty is known on the host without reading anything (the pool fills
with the first ``size`` images, whatever the draws). Upstream draws the slot only when it swaps;
here both are drawn for every image, which changes the random stream, not the distribution
(``test_image_pool_has_upstreams_distribution`` compares the two).

The pool is training state: a stage declares it (``Stage(state={"pool": pool})``) so the engine
checkpoints it and a resumed run draws the same fakes as an uninterrupted one.
"""
from __future__ import annotations

import torch


class ImagePool:
    def __init__(self, size: int) -> None:
        self.size = int(size)
        self.store: torch.Tensor | None = None  # [size, C, H, W], allocated by the first query
        self.filled = 0

    def __len__(self) -> int:
        return self.filled

    @property
    def images(self) -> torch.Tensor | list:
        """The stored images, ``[filled, C, H, W]`` (an empty list before the first query)."""
        return [] if self.store is None else self.store[:self.filled]

    def state_dict(self) -> dict:
        # one [1, C, H, W] tensor per stored image: the format of the earlier, list-based pool
        return {"images": [image.unsqueeze(0).clone() for image in self.images]}

    def load_state_dict(self, state: dict) -> None:
        images = list(state["images"])
        self.store, self.filled = None, 0
        if images:
            stacked = torch.cat([image.reshape(1, *image.shape[-3:]) for image in images])
            self.store = stacked.new_zeros((max(self.size, len(stacked)), *stacked.shape[1:]))
            self.store[:len(stacked)] = stacked
            self.filled = len(stacked)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        images = images.detach()
        if self.size <= 0:
            return images
        if self.store is None or self.store.shape[1:] != images.shape[1:] or self.store.device != images.device:
            self.load_state_dict({"images": [image.to(images.device, images.dtype) for image in self.images]})
            if self.store is None:
                self.store = images.new_zeros((self.size, *images.shape[1:]))
        stored = min(images.shape[0], self.size - self.filled)  # the pool is filling: kept and returned
        if stored:
            self.store[self.filled:self.filled + stored] = images[:stored]
            self.filled += stored
        if stored == images.shape[0]:
            return images
        rest = images[stored:]
        swap = torch.rand(rest.shape[0], device=rest.device) > 0.5  # upstream: random.uniform(0, 1) > 0.5
        slots = torch.randint(0, self.size, (rest.shape[0],), device=rest.device)
        out = [images[:stored]] if stored else []
        for j in range(rest.shape[0]):  # in batch order: a later image may draw the slot an earlier one took
            slot, new = slots[j:j + 1], rest[j:j + 1]
            old = self.store.index_select(0, slot)
            out.append(torch.where(swap[j], old, new))
            self.store.index_copy_(0, slot, torch.where(swap[j], new, old).to(self.store.dtype))
        return out[0] if len(out) == 1 else torch.cat(out)
