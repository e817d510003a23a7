"""What the machine offers: CPU flags, oneDNN, GPUs, and the speed decisions made from them.

The decisions (`bfloat16_is_fast`, `matmul_convs_are_faster`) are pure functions of the
capabilities, so that they can be tested with faked ones; `capabilities()` reads the live ones.
"""

import dataclasses
import functools
import os
import platform
import sys
from typing import FrozenSet, Optional, Tuple

# CPU features with bfloat16 matrix instructions, which oneDNN's bfloat16 kernels use.
BF16_CPU_FLAGS = frozenset({'amx_bf16', 'avx512_bf16'})
# TensorFlow (2.9 and later, Linux x86-64) runs its CPU kernels through oneDNN by default only on
# CPUs with one of these; elsewhere its Eigen kernels, unless TF_ENABLE_ONEDNN_OPTS says otherwise.
ONEDNN_DEFAULT_CPU_FLAGS = frozenset({'avx512_vnni', 'avx512_bf16', 'avx_vnni', 'amx_tile',
                                      'amx_int8', 'amx_bf16'})
# bfloat16 tensor cores: NVIDIA Ampere (compute capability 8.0) and later.
BF16_GPU_CAPABILITY = (8, 0)
# The instructions our speed depends on, widest first, as figures name a CPU family by them.
VECTOR_UNITS = (('amx_bf16', 'AMX-BF16'), ('avx512_bf16', 'AVX-512 with AVX512_BF16'),
                ('avx512f', 'AVX-512'), ('avx2', 'AVX2'))


@dataclasses.dataclass(frozen=True)
class Capabilities:
    cpu_flags: FrozenSet[str] = frozenset()
    onednn: bool = False
    # Compute capability of the first GPU TensorFlow sees; None: no GPU.
    gpu: Optional[Tuple[int, int]] = None


def bfloat16_is_fast(caps: Capabilities) -> bool:
    """Whether VGG19 runs markedly faster in bfloat16 than in float32 (docs/benchmarks.md): on
    GPUs with bfloat16 tensor cores, and on CPUs with bfloat16 matrix instructions whose
    convolutions TensorFlow hands to oneDNN (without oneDNN its bfloat16 kernels are slower than
    float32)."""
    if caps.gpu is not None:
        return caps.gpu >= BF16_GPU_CAPABILITY
    return caps.onednn and bool(BF16_CPU_FLAGS & caps.cpu_flags)


def matmul_convs_are_faster(caps: Capabilities) -> bool:
    """Whether float32 convolutions with 512 input channels run faster as shifted matmuls
    (frozen_conv.shifted_matmuls): on a CPU whose convolutions oneDNN runs, not on a GPU."""
    return caps.gpu is None and caps.onednn


def expected_capabilities(environ=os.environ) -> Capabilities:
    """The capabilities as far as they can be known without importing TensorFlow: oneDNN as
    TensorFlow decides it (TF_ENABLE_ONEDNN_OPTS when set, else by the CPU's flags: see
    ONEDNN_DEFAULT_CPU_FLAGS); GPUs are not looked for."""
    flags = cpu_flags()
    x86 = platform.machine().lower() in ('x86_64', 'amd64')
    setting = environ.get('TF_ENABLE_ONEDNN_OPTS', '').strip().lower()
    if setting in ('1', 'true', '0', 'false'):
        onednn = x86 and setting in ('1', 'true')
    else:
        onednn = x86 and sys.platform.startswith('linux') and bool(ONEDNN_DEFAULT_CPU_FLAGS & flags)
    return Capabilities(flags, onednn, None)


@functools.lru_cache(maxsize=None)
def capabilities() -> Capabilities:
    """The live capabilities (imports TensorFlow; asked once per process)."""
    import tensorflow as tf
    gpu = None
    devices = tf.config.list_physical_devices('GPU')
    if devices:
        details = tf.config.experimental.get_device_details(devices[0])
        gpu = tuple(details.get('compute_capability') or (0, 0))
    return Capabilities(cpu_flags(), onednn_enabled(), gpu)


@functools.lru_cache(maxsize=None)
def cpu_flags(cpuinfo: str = '/proc/cpuinfo') -> FrozenSet[str]:
    """The CPU's feature flags as Linux lists them (empty elsewhere)."""
    try:
        with open(cpuinfo) as f:
            for line in f:
                if line.startswith('flags'):
                    return frozenset(line.split(':', 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_name() -> str:
    """The CPU's model name (for benchmark figures)."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def vector_units(flags: FrozenSet[str]) -> str:
    """The widest of VECTOR_UNITS that CPU `flags` have ('' if none): a model name such as
    "AMD EPYC" covers CPUs with and without bfloat16 instructions."""
    return next((name for flag, name in VECTOR_UNITS if flag in flags), '')


def onednn_enabled() -> bool:
    """Whether TensorFlow runs its CPU kernels through oneDNN. No public API says so."""
    try:
        from tensorflow.python.util import _pywrap_util_port
        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        return False
