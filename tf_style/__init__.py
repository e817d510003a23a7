"""tf_style: neural style transfer after Gatys, Ecker & Bethge (CVPR 2016), in TensorFlow 2.

The public API is imported lazily, so `import tf_style` is cheap and does no TensorFlow setup:

    import tf_style
    result = tf_style.stylize(content, style, iterations=300, callback=print)
    result.image  # uint8 array, H x W x 3
"""

import importlib

_EXPORTS = {
    'stylize': 'tf_style.transfer',
    'StylizeResult': 'tf_style.transfer',
    'Progress': 'tf_style.transfer',
    'Stage': 'tf_style.transfer',
    'CompiledSteps': 'tf_style.optimize',
    'StyleTransferConfig': 'tf_style.config',
    'VGG19Features': 'tf_style.network',
    'build_extractor': 'tf_style.network',
    'export_extractor': 'tf_style.export',
    'load_extractor': 'tf_style.export',
    'export_stylizer': 'tf_style.export_stylizer',
    'write_hed_vgg19_weights': 'tf_style.convert',
    'normalize_vgg19': 'tf_style.normalize',
    'load_image': 'tf_style.images',
    'save_image': 'tf_style.images',
    'TfStyleError': 'tf_style.errors',
}

__all__ = sorted(_EXPORTS)
__version__ = '0.9.0'


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f'module tf_style has no attribute {name!r}')
