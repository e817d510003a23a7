"""The precision a run computes in, and the one owner of which network is running.

Not in the paper, a performance layer: 'mixed' runs VGG19 in bfloat16 (Grams and losses stay
float32). bfloat16's rounding hides the last decreases of the loss from L-BFGS's line search, so
a mixed L-BFGS run goes on in float32 ("the exact network") once its line search stalls.
"""

from . import hardware
from .errors import ConfigError

PRECISIONS = ('auto', 'float32', 'mixed')


def choose(requested: str, caps: hardware.Capabilities, exportable: bool = True) -> str:
    """'float32' or 'mixed' for the `requested` precision on a machine with `caps`.

    `exportable`: whether the network can be rebuilt in bfloat16 (a SavedModel extractor
    cannot).
    """
    if requested == 'float32' or (requested == 'auto' and not exportable):
        return 'float32'
    if requested == 'auto':
        return 'mixed' if hardware.bfloat16_is_fast(caps) else 'float32'
    if not exportable:
        raise ConfigError('precision=mixed needs a VGG19 extractor, not an exported one',
                          option='precision')
    if caps.gpu is not None and caps.gpu < hardware.BF16_GPU_CAPABILITY:
        raise ConfigError('precision=mixed needs bfloat16, which this GPU (compute capability '
                          f'{caps.gpu[0]}.{caps.gpu[1]}) lacks: use precision=float32',
                          option='precision')
    return 'mixed'


def expected(requested: str) -> str:
    """What `requested` will resolve to, judged without importing TensorFlow (memory.py)."""
    try:
        return choose(requested, hardware.expected_capabilities())
    except ConfigError:
        return 'float32'


class Precision:
    """Holds the working network (float32 or mixed) and the exact (float32) one, and says which
    one runs: the working one, until `switch_to_exact` (a stalled mixed L-BFGS run)."""

    def __init__(self, extractor, requested: str = 'auto'):
        exportable = hasattr(extractor, 'with_precision')
        self.name = choose(requested, hardware.capabilities(), exportable)
        self.exact = extractor.with_precision('float32') if exportable else extractor
        self.working = extractor.with_precision(self.name) if exportable else extractor
        self.switched = False

    @property
    def network(self):
        return self.exact if self.switched else self.working

    @property
    def is_exact(self) -> bool:
        return self.network is self.exact

    def should_switch(self, optimization) -> bool:
        return not self.is_exact and optimization.stalled()

    def switch_to_exact(self):
        self.switched = True

    def start_scale(self, state=None):
        """Each scale starts on the working network, or as a checkpoint's `state` says."""
        self.switched = bool(state and state.get('switched'))

    def state(self) -> dict:
        """What a checkpoint keeps: a run saved after it went on in float32 resumes in float32
        (its kept losses are float32 losses, which bfloat16 ones must not be compared with)."""
        return {'name': self.name, 'switched': self.switched}
