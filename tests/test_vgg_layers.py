import pytest

from tf_style import vgg_layers
from tf_style.errors import ConfigError


def test_layer_list_is_vgg19():
    convs = [name for name in vgg_layers.LAYERS if '_conv' in name]
    pools = [name for name in vgg_layers.LAYERS if name.endswith('_pool')]
    assert len(convs) == 16 and len(pools) == 5
    assert vgg_layers.LAYERS[0] == 'block1_conv1' and vgg_layers.LAYERS[-1] == 'block5_pool'


@pytest.mark.parametrize('alias, name', [
    ('conv4_2', 'block4_conv2'), ('relu1_1', 'block1_conv1'), ('pool3', 'block3_pool'),
    ('block5_conv4', 'block5_conv4'), (' conv2_1 ', 'block2_conv1')])
def test_aliases(alias, name):
    assert vgg_layers.canonical(alias) == name


@pytest.mark.parametrize('bad', ['conv6_1', 'block4_conv5', 'fc7', '', 'conv4'])
def test_unknown_layer_is_a_clear_error(bad):
    with pytest.raises(ConfigError, match='unknown VGG19 layer'):
        vgg_layers.canonical(bad)


def test_depth_orders_layers():
    assert vgg_layers.depth('conv1_1') < vgg_layers.depth('pool1') < vgg_layers.depth('conv5_1')


def test_geometry():
    assert vgg_layers.channels('conv1_1') == 64 and vgg_layers.channels('pool5') == 512
    assert vgg_layers.input_channels('conv1_1') == 3
    assert vgg_layers.input_channels('conv3_1') == 128
    assert vgg_layers.positions('conv1_1', 32, 48) == 32 * 48
    assert vgg_layers.positions('pool1', 32, 48) == 16 * 24
    assert vgg_layers.positions('conv4_2', 32, 48) == 4 * 6
