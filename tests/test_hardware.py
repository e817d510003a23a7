"""The hardware decisions, with faked capabilities, and the precision owner."""

import pytest

from tf_style import hardware, precision
from tf_style.errors import ConfigError
from tf_style.hardware import Capabilities


@pytest.mark.parametrize('caps, fast', [
    (Capabilities(frozenset({'avx2', 'amx_bf16'}), True), True),
    (Capabilities(frozenset({'avx512f', 'avx512_bf16'}), True), True),   # AMD Zen 4
    (Capabilities(frozenset({'avx512_bf16'}), False), False),            # no oneDNN
    (Capabilities(frozenset({'avx2', 'fma'}), True), False),             # AVX2 only
    (Capabilities(frozenset(), False, (8, 0)), True),                    # Ampere
    (Capabilities(frozenset({'amx_bf16'}), True, (7, 5)), False),        # Turing: the GPU runs
])
def test_bfloat16_is_fast(caps, fast):
    assert hardware.bfloat16_is_fast(caps) is fast
    assert precision.choose('auto', caps) == ('mixed' if fast else 'float32')
    assert precision.choose('float32', caps) == 'float32'


def test_matmul_convs_only_on_a_onednn_cpu():
    assert hardware.matmul_convs_are_faster(Capabilities(frozenset(), True))
    assert not hardware.matmul_convs_are_faster(Capabilities(frozenset(), False))
    assert not hardware.matmul_convs_are_faster(Capabilities(frozenset(), True, (9, 0)))


def test_mixed_is_refused_where_it_cannot_run():
    with pytest.raises(ConfigError, match='compute capability 7.0') as e:
        precision.choose('mixed', Capabilities(gpu=(7, 0)))
    assert e.value.option == 'precision'
    with pytest.raises(ConfigError, match='exported'):
        precision.choose('mixed', Capabilities(), exportable=False)
    # An exported extractor computes in float32 only.
    assert precision.choose('auto', Capabilities(frozenset({'amx_bf16'}), True),
                            exportable=False) == 'float32'


@pytest.mark.parametrize('flags, units', [
    ({'avx2', 'avx512f', 'avx512_bf16', 'amx_bf16'}, 'AMX-BF16'),       # Intel Xeon with AMX
    ({'avx2', 'avx512f', 'avx512_bf16'}, 'AVX-512 with AVX512_BF16'),  # AMD Zen 4
    ({'avx2', 'avx512f'}, 'AVX-512'),
    ({'avx2', 'fma'}, 'AVX2'),                                          # AMD Zen 2/3
    (set(), ''),
])
def test_vector_units_name_the_cpu_family(flags, units):
    assert hardware.vector_units(frozenset(flags)) == units


def test_cpu_flags(tmp_path):
    cpuinfo = tmp_path / 'cpuinfo'
    cpuinfo.write_text('processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 amx_bf16 amx_tile\n')
    assert {'amx_bf16', 'avx512_bf16'} <= hardware.cpu_flags(str(cpuinfo))
    assert hardware.cpu_flags(str(tmp_path / 'missing')) == frozenset()


@pytest.mark.parametrize('flags, setting, onednn', [
    ({'avx2', 'avx512f', 'amx_bf16', 'amx_tile'}, None, True),   # Intel Xeon with AMX
    ({'avx2', 'avx512f', 'avx512_bf16', 'avx512_vnni'}, None, True),   # AMD Zen 4
    ({'avx2', 'avx512f'}, None, False),                           # Skylake-X: no VNNI
    ({'avx2', 'fma'}, None, False),                               # AVX2 only (AMD EPYC here)
    ({'avx2', 'fma'}, '1', True),                                 # the user's choice wins
    ({'avx2', 'amx_bf16'}, 'false', False),
])
def test_expected_onednn_is_tensorflows_default_policy(flags, setting, onednn, monkeypatch):
    monkeypatch.setattr(hardware, 'cpu_flags', lambda: frozenset(flags))
    monkeypatch.setattr(hardware.platform, 'machine', lambda: 'x86_64')
    monkeypatch.setattr(hardware.sys, 'platform', 'linux')
    environ = {} if setting is None else {'TF_ENABLE_ONEDNN_OPTS': setting}
    assert hardware.expected_capabilities(environ).onednn is onednn


def test_expected_onednn_matches_tensorflow_here():
    from tensorflow.python.util import _pywrap_util_port
    assert hardware.expected_capabilities().onednn == bool(_pywrap_util_port.IsMklEnabled())


def test_expected_capabilities_need_no_tensorflow(monkeypatch):
    monkeypatch.setenv('TF_ENABLE_ONEDNN_OPTS', '0')
    assert not hardware.expected_capabilities().onednn


def test_precision_owner_switches_once_and_says_so(random_extractor, monkeypatch):
    monkeypatch.setattr(hardware, 'capabilities', lambda: Capabilities())
    owner = precision.Precision(random_extractor, 'mixed')
    assert owner.name == 'mixed' and owner.network.precision == 'mixed' and not owner.is_exact

    class Stalled:
        def stalled(self):
            return True
    assert owner.should_switch(Stalled())
    owner.switch_to_exact()
    assert owner.is_exact and owner.network.precision == 'float32'
    assert not owner.should_switch(Stalled())
    assert owner.state() == {'name': 'mixed', 'switched': True}
    owner.start_scale()
    assert not owner.is_exact
    owner.start_scale(owner.state() | {'switched': True})
    assert owner.is_exact
    exact = precision.Precision(random_extractor, 'float32')
    assert exact.is_exact and not exact.should_switch(Stalled())
