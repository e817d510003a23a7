"""The tests' numerical tolerances: one per kind of comparison, each with its reason.

VGG19 computes on one of three kernel paths, and what two computations may differ by depends
on the path, not on the machine a tolerance was first chosen on:

- float32 (TensorFlow's default Eigen kernels, or oneDNN's). Deterministic within a process;
  between processes, thread counts and kernel choices sum in other orders: a few float32 ulps
  per sum, about 1e-6 relative after VGG19's depth.
- bfloat16 with native instructions (oneDNN on a CPU with AMX or AVX512_BF16:
  `hardware.bfloat16_is_fast`). 8 bits of mantissa, float32 accumulation.
- bfloat16 emulated (TensorFlow's default kernels, `TF_ENABLE_ONEDNN_OPTS=0`, the path of every
  AVX2-only CPU; or oneDNN without bfloat16 instructions). The same format, rounded in other
  places: Eigen rounds a convolution's operands and partial sums where oneDNN keeps float32.

Exact equality stays where a result is defined to be bit-exact: the same computation twice in
one process (seeded runs, resume against an uninterrupted run, a cached against a fresh compiled
step), and the golden pictures on the CPU family that wrote them.
"""

import dataclasses
import functools

import numpy as np


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """|actual - expected| <= rtol |expected| + scale max|expected|, elementwise. `scale` covers
    elements near zero in an array whose large elements set the rounding (sums that cancel)."""
    rtol: float
    scale: float
    why: str

    def check(self, actual, expected, err_msg=''):
        actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
        atol = self.scale * float(np.max(np.abs(expected))) if expected.size else 0.0
        np.testing.assert_allclose(actual, expected, rtol=self.rtol, atol=atol,
                                   err_msg=f'{err_msg} ({self.why})'.strip())


@functools.lru_cache(maxsize=None)
def bfloat16_path() -> str:
    """'native' or 'emulated': how this process computes bfloat16 convolutions."""
    from tf_style import hardware
    return 'native' if hardware.bfloat16_is_fast(hardware.capabilities()) else 'emulated'


# float32, the same network in another process or another graph (a SavedModel served by
# saved_model_cli or a Session, a Keras layer around it): summation order only.
FLOAT32_OTHER_RUN = Tolerance(1e-5, 1e-6, 'float32 summed in another order: thread count, '
                              'kernel choice')
# float32, the same function computed another way (shifted matmuls for a convolution, a
# rotated-kernel convolution for a gradient, TFLite's kernels, a tile with its halo): a few
# ulps per product, through up to 16 layers.
FLOAT32_OTHER_KERNELS = Tolerance(1e-4, 1e-5, 'float32 through other kernels (matmuls, TFLite, '
                                  'tiles), rounding at each of up to 16 layers')
# A bfloat16 matrix product (the Gram's gradient under mixed precision) against float64: operands
# rounded to 8 bits of mantissa, sums in float32.
BFLOAT16_PRODUCT = Tolerance(2e-2, 2e-2, 'a bfloat16 product: operands with 8-bit mantissas')
# A whole objective (a sum over millions of float32 products) computed another way: the tiled
# evaluation against the whole image, SciPy's reference against ours.
FLOAT32_OBJECTIVE = Tolerance(1e-5, 0.0, 'a float32 objective summed in another order')


def bfloat16_against_float32() -> Tolerance:
    """A loss of the bfloat16 network against the float32 one's (the same image). Measured at
    64-256 px: 3-5e-4 relative on both bfloat16 paths (native and emulated round the same
    format); 5 % leaves room for random weights, whose deep features cancel more."""
    return Tolerance(0.05, 0.0, 'bfloat16 (8-bit mantissa) against float32')


def bfloat16_against_keras() -> float:
    """Relative (L2) error allowed between our bfloat16 input gradient through VGG19 and the
    gradient of Keras' own Conv2D under the same policy: both bfloat16, rounded in other places
    (ours: a forward convolution with the rotated kernel). A wrong kernel is ~100 % off."""
    # Native: 0 on a Zen 4 (AVX512_BF16), 1e-2 at most seen. Emulated (Eigen's bfloat16
    # kernels): 0.039 on an AVX2-only EPYC and on a Sapphire Rapids with oneDNN off.
    return 0.02 if bfloat16_path() == 'native' else 0.1
