import pytest

from tf_style.config import StyleTransferConfig
from tf_style.errors import ConfigError


def test_defaults_are_the_papers():
    c = StyleTransferConfig()
    assert c.content_layers == ('block4_conv2',)
    assert c.style_layers == ('block1_conv1', 'block2_conv1', 'block3_conv1', 'block4_conv1',
                              'block5_conv1')
    assert c.content_weight / c.style_weight == pytest.approx(1e-3)
    assert c.pooling == 'avg' and c.init == 'noise' and c.tv_weight == 0
    assert c.weights == 'imagenet'


def test_layers_are_canonical_and_ordered():
    c = StyleTransferConfig(content_layers=('conv5_2', 'conv1_2'), style_layers='relu2_1',
                            style_layer_weights=[0.5])
    assert c.content_layers == ('block5_conv2', 'block1_conv2')
    assert c.layers == ('block1_conv2', 'block2_conv1', 'block5_conv2')
    assert c.style_layer_weights == (0.5,)


@pytest.mark.parametrize('changes, message', [
    (dict(style_weight=-1.0), 'style_weight'),
    (dict(content_weight=float('nan')), 'content_weight'),
    (dict(tv_weight=-0.1), 'tv_weight'),
    (dict(style_layer_weights=(1.0, 2.0)), '2 values for 5 layers'),
    (dict(style_layer_weights=(1, 1, 1, 1, -1)), 'style_layer_weights'),
    (dict(style_layer_weights=('a', 'b')), 'must be numbers'),
    (dict(content_layers='conv9_9'), 'unknown VGG19 layer'),
    (dict(style_layers=()), 'empty'),
    (dict(style_layers=('conv1_1', 'relu1_1')), 'twice'),
    (dict(image_size=8), 'image_size'),
    (dict(iterations=-1), 'iterations'),
    (dict(init='zeros'), 'init'),
    (dict(pooling='min'), 'pooling'),
    (dict(style_scale=0.0), 'style_scale'),
    (dict(learning_rate=-1.0), 'learning_rate'),
    (dict(style_scale=(1, 'x')), 'must be numbers'),
    (dict(style_scale=(1.0, -2.0)), 'style_scale'),
    (dict(style_blend_weights=(1.0, -1.0)), 'style_blend_weights'),
    (dict(style_blend_weights=(0, 0)), 'all 0'),
    (dict(preserve_colors='yes'), 'preserve_colors'),
    (dict(init_noise_blend=1.5), 'init_noise_blend'),
    (dict(content_weight=0.0, style_weight=0.0), 'nothing to optimise'),
])
def test_bad_settings_are_refused(changes, message):
    with pytest.raises(ConfigError, match=message):
        StyleTransferConfig(**changes)


def test_coarse_to_fine_schedule():
    c = StyleTransferConfig(image_size=512, scales=3, iterations=100)
    assert c.schedule() == [(128, 400), (256, 200), (512, 100)]
    c = StyleTransferConfig(image_size=500, scales=2, scale_iterations=[30, 10])
    assert c.schedule() == [(250, 30), (500, 10)]
    assert StyleTransferConfig(iterations=7).schedule() == [(512, 7)]


def test_optimizer_defaults():
    assert StyleTransferConfig().optimizer == 'lbfgs'
    assert StyleTransferConfig().step_size == 1.0
    assert StyleTransferConfig(optimizer='adam').step_size == 10.0
    assert StyleTransferConfig().replace(optimizer='adam').step_size == 10.0
    assert StyleTransferConfig(optimizer='adam', learning_rate=3.0).step_size == 3.0


@pytest.mark.parametrize('changes, message', [
    (dict(optimizer='sgd'), 'optimizer'),
    (dict(precision='float16'), 'precision'),
    (dict(lbfgs_history=0), 'lbfgs_history'),
    (dict(scales=0), 'scales'),
    (dict(scales=2, scale_iterations=(5,)), '1 values for 2 scales'),
    (dict(scales=2, scale_iterations=(5, 'x')), 'non-negative integers'),
])
def test_bad_speed_settings(changes, message):
    with pytest.raises(ConfigError, match=message):
        StyleTransferConfig(**changes)


def test_per_style_settings():
    c = StyleTransferConfig(style_scale=(1, 0.5), style_blend_weights=(3, 1))
    assert c.style_scales(2) == (1.0, 0.5) and c.blend_weights(2) == (0.75, 0.25)
    assert StyleTransferConfig(style_scale=2.0).style_scales(3) == (2.0, 2.0, 2.0)
    assert StyleTransferConfig().blend_weights(4) == (0.25,) * 4
    with pytest.raises(ConfigError, match='2 values for 3 style'):
        c.style_scales(3)


def test_errors_name_the_option():
    with pytest.raises(ConfigError) as e:
        StyleTransferConfig(style_scale=(1.0, -2.0))
    assert e.value.option == 'style_scale'
