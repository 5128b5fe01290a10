"""The engine's batches: every step's indices settled once per epoch are the ones a step would take,
``size`` entries of the order from ``step * size``, wrapping around; a resumed epoch gets the same tail."""
import pytest
import torch

from petbench import Stage
from petbench.data.slices import TrainingData
from petbench.engine.trainer import batches, step_indices


def short_source_rule(order, size, step):
    """A source with fewer slices than a batch: its first batch is all it has, later ones wrap."""
    length = len(order)
    begin = step * size % length
    index = order[begin:]
    return torch.cat([index, order[:size - (length - begin)]]) if begin else index


@pytest.mark.parametrize("length,size", [(7, 1), (7, 2), (7, 3), (8, 4), (6, 6), (5, 7), (3, 8), (1, 4)])
@pytest.mark.parametrize("start", [0, 2])
def test_step_indices_take_size_entries_from_step_times_size(length, size, start):
    order = torch.randperm(length, generator=torch.Generator().manual_seed(length * 10 + size))
    steps = 9
    rows = step_indices(order, size, start, steps)
    assert len(rows) == steps - start
    for step, row in zip(range(start, steps), rows):
        if length >= size:
            expected = torch.tensor([int(order[(step * size + i) % length]) for i in range(size)])
        else:
            expected = short_source_rule(order, size, step)
        assert row.tolist() == expected.tolist(), (step, row, expected)


def test_a_resumed_epoch_gets_the_same_batches():
    generator = torch.Generator().manual_seed(0)
    data = TrainingData({"lpet": torch.rand(10, 1, 2, 2, generator=generator),
                         "spet": torch.rand(10, 1, 2, 2, generator=generator),
                         "spet_u": torch.rand(3, 1, 2, 2, generator=generator)})
    stage = Stage("s", lambda batch, ctx: {}, {}, (), sources=("paired", "unpaired_spet"), batch_size=4)
    whole = list(batches(stage, data, 5, 7, torch.device("cpu")))
    tail = list(batches(stage, data, 5, 7, torch.device("cpu"), start=3))
    assert [sorted(b) for b in whole] == [["lpet", "spet", "spet_u"]] * 5
    for a, b in zip(whole[3:], tail, strict=True):
        for key in a:
            assert torch.equal(a[key], b[key]), key
