"""The 128^3 block: the S3PET group's fixed Quadra crop, the body-centred option, padding, the affine."""
import numpy as np
import pytest

from petbench.datasets.scanned.preprocess import Block, body_block, choose_block, crop, crop_affine, paper_block


def test_paper_block_on_a_quadra_volume_is_the_groups_crop():
    # their code: image[156+10:284+10, 156+35:284+35, -1-128:-1] on the [x, y, z] array of 440 x 440 x 644
    block = paper_block((644, 440, 440), 128)
    assert block == Block((644 - 129, 191, 166), (128, 128, 128))


def test_paper_block_keeps_its_offset_on_a_uexplorer_matrix():
    assert paper_block((673, 360, 360), 128) == Block((673 - 129, 180 - 64 + 35, 180 - 64 + 10), (128, 128, 128))


def test_small_volumes_are_padded_with_zeros_and_blocks_moved_inside():
    volume = np.arange(6 * 5 * 4, dtype=np.float32).reshape(6, 5, 4) + 1
    block = paper_block(volume.shape, 8)
    out = crop(volume, block)
    assert out.shape == (8, 8, 8)
    assert out.sum() == pytest.approx(volume.sum())  # everything kept, zeros around it
    inside = paper_block((40, 30, 30), 8)
    assert all(0 <= s and s + 8 <= n for s, n in zip(inside.start, (40, 30, 30)))


def test_body_block_centres_on_the_body():
    volume = np.zeros((60, 50, 40), dtype=np.float32)
    volume[30:50, 10:30, 20:36] = 100.0  # the body
    volume[2, 2, 2] = 5000.0  # a hot speck outside it does not move the block
    block = body_block(volume, 16)
    assert block.start == (40 - 8, 20 - 8, 28 - 8)
    assert choose_block("none", volume, 16) is None


def test_cropped_affine_points_at_the_blocks_first_voxel():
    affine = np.array([[-2.0, 0, 0, 100], [0, -2.0, 0, 80], [0, 0, 3.0, -500], [0, 0, 0, 1]])
    block = Block((4, 5, 6), (8, 8, 8))  # z, y, x
    moved = crop_affine(affine, block)
    np.testing.assert_allclose(moved @ [0, 0, 0, 1], affine @ [6, 5, 4, 1])
    np.testing.assert_allclose(moved[:3, :3], affine[:3, :3])
