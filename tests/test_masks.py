"""Spatial control: masks from files and label images, masks at each layer, guided Grams."""

import numpy as np
import pytest
import tensorflow as tf

from tf_style import losses, masks
from tf_style.errors import ConfigError


def test_labels_become_masks_darkest_first():
    labels = np.zeros((4, 6, 3), np.uint8)
    labels[:, 3:] = (255, 0, 0)
    labels[3, :] = (255, 255, 255)
    black, red = masks.masks_from_labels(labels, 2)
    assert black[0, 0] == 1 and black[0, 3] == 0 and red[0, 3] == 1 and red[0, 0] == 0
    assert black[3].sum() == 0 and red[3].sum() == 0   # white: a third colour, no style
    with pytest.raises(ConfigError, match='1 colour'):
        masks.masks_from_labels(np.zeros((4, 4, 3), np.uint8), 2)
    noisy = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    with pytest.raises(ConfigError, match='flat colours'):
        masks.masks_from_labels(noisy, 2)


def test_mask_files_and_resizing(tmp_path):
    from tf_style import images
    mask = np.zeros((8, 8, 3), np.uint8)
    mask[:, :4] = 255
    images.save_image(str(tmp_path / 'm.png'), mask)
    loaded = masks.load_mask(str(tmp_path / 'm.png'))
    np.testing.assert_array_equal(loaded, mask[..., 0] / 255.0)
    small = masks.resize_mask(loaded, (4, 4))
    assert small.shape == (4, 4) and small.min() >= 0 and small.max() <= 1
    assert small[:, 0].min() > 0.9 and small[:, 3].max() < 0.1


def test_masks_at_layers_follow_the_networks_pooling():
    mask = np.ones((37, 50), np.float32)
    at = masks.at_layers(mask, ['block1_conv1', 'block3_conv1', 'block5_conv1'])
    assert at['block1_conv1'].shape == (1, 37, 50, 1)
    assert at['block3_conv1'].shape == (1, 9, 12, 1)
    assert at['block5_conv1'].shape == (1, 2, 3, 1)
    assert all(float(tf.reduce_min(m)) == 1.0 for m in at.values())


def test_guided_gram_of_ones_is_the_position_mean_gram_and_masks_select():
    features = tf.random.stateless_uniform([1, 4, 6, 3], seed=[1, 2])
    ones = tf.ones([1, 4, 6, 1])
    np.testing.assert_array_equal(losses.guided_gram(features, ones),
                                  losses.position_mean_gram(features))
    left = np.zeros((1, 4, 6, 1), np.float32)
    left[:, :, :3] = 1
    np.testing.assert_allclose(losses.guided_gram(features, left),
                               losses.position_mean_gram(features[:, :, :3]), rtol=1e-6)


def test_check_masks():
    masks.check_masks([np.ones((2, 2))], 1, 'content masks')
    with pytest.raises(ConfigError, match='one per style'):
        masks.check_masks([np.ones((2, 2))], 2, 'content masks')
    with pytest.raises(ConfigError, match='0..1'):
        masks.check_masks([np.full((2, 2), 2.0)], 1, 'content masks')
