"""Where the tooling commands find the shipped example images."""

import os

from absl import flags

from .. import images
from ..errors import TfStyleError

CHECKOUT_EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'examples')


def define_flag(fv):
    flags.DEFINE_string('examples_dir', CHECKOUT_EXAMPLES if os.path.isdir(CHECKOUT_EXAMPLES)
                        else None, "The example images (a checkout's examples/).",
                        flag_values=fv)


def path(FLAGS, name: str) -> str:
    if not FLAGS.examples_dir:
        raise TfStyleError("this command needs the example images: pass --examples_dir (a "
                           "checkout's examples/)")
    return os.path.join(FLAGS.examples_dir, name + '.jpg')


def load(FLAGS, name: str):
    return images.load_image(path(FLAGS, name))
