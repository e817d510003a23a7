import re

import pytest

from tf_style import memory
from tf_style.config import StyleTransferConfig
from tf_style.errors import TfStyleError


def test_estimate_grows_with_pixels_and_history():
    c = StyleTransferConfig()
    small, large = memory.estimate_bytes(512, 512, c), memory.estimate_bytes(1024, 1024, c)
    assert memory.BASE_BYTES < small < large
    assert large - memory.BASE_BYTES > 3.5 * (small - memory.BASE_BYTES)
    assert memory.estimate_bytes(1024, 1024, c.replace(lbfgs_history=50)) > large
    # Mixed-precision Adam needs less; mixed L-BFGS may finish in float32, so it needs more than
    # mixed Adam, and auto (which may be float32) as much as float32.
    adam = c.replace(optimizer='adam', precision='float32')
    estimate = lambda config: memory.estimate_bytes(1024, 1024, config)
    assert estimate(adam.replace(precision='mixed')) < estimate(adam)
    assert estimate(adam.replace(precision='mixed')) < estimate(c.replace(precision='mixed')) \
        < estimate(c.replace(precision='float32'))
    from tf_style import precision  # auto: what it runs on this machine
    assert estimate(c.replace(precision='auto')) == estimate(
        c.replace(precision=precision.expected('auto')))


def test_estimate_errs_high_but_close_on_the_measured_peaks():
    c = StyleTransferConfig()
    for (precision, side), gib in memory.MEASURED_GIB.items():
        estimate = memory.estimate_bytes(side * 3 // 4, side, c.replace(precision=precision))
        assert gib < estimate / 2 ** 30 < 1.2 * gib, (precision, side)


def test_tiled_estimate_errs_high_but_close_on_the_measured_peaks():
    c = StyleTransferConfig()
    for (precision, side, tile), gib in memory.MEASURED_TILED_GIB.items():
        estimate = memory.tiled_estimate_bytes(side * 3 // 4, side, tile,
                                               c.replace(precision=precision))
        assert gib < estimate / 2 ** 30 < 1.3 * gib, (precision, side, tile)


def test_largest_fitting_size():
    c = StyleTransferConfig()
    budget = 8 * 2 ** 30
    size = memory.largest_fitting_size(0.75, c, budget)
    assert size % 64 == 0
    assert memory.estimate_bytes(round(size * 0.75), size, c) <= budget
    assert memory.estimate_bytes(round((size + 64) * 0.75), size + 64, c) > budget


def test_available_memory_is_positive():
    assert memory.available_bytes() > 0


def test_available_memory_counts_what_the_process_holds(tmp_path):
    """A process that already holds memory (TensorFlow, the network) may use it and what Linux
    still has: the estimates are of the whole process."""
    meminfo, status = tmp_path / 'meminfo', tmp_path / 'status'
    meminfo.write_text('MemTotal: 25165824 kB\nMemAvailable: 20971520 kB\n')
    status.write_text('Name: python\nVmRSS: 3145728 kB\n')
    assert memory.available_bytes(str(meminfo), str(status)) == 23 * GIB
    assert memory.available_bytes(str(meminfo), str(tmp_path / 'none')) == 20 * GIB


def test_impossible_memory_is_refused_with_a_size_that_fits(tmp_path, monkeypatch):
    import pytest
    from tf_style.errors import TfStyleError
    monkeypatch.setattr(memory, 'available_bytes', lambda: 4 * 2 ** 30)
    with pytest.raises(TfStyleError, match=r'use image_size=\d+ or less'):
        memory.check_fits(4096, 4096, StyleTransferConfig(image_size=4096))
    memory.check_fits(256, 256, StyleTransferConfig(image_size=256), [(256, 256)])


def test_a_huge_style_image_is_refused_naming_style_scale(monkeypatch):
    import pytest
    from tf_style.errors import TfStyleError
    monkeypatch.setattr(memory, 'available_bytes', lambda: 8 * 2 ** 30)
    config = StyleTransferConfig(image_size=256, style_scale=1000.0)
    with pytest.raises(TfStyleError, match='smaller style_scale') as e:
        memory.check_fits(256, 256, config, [(256000, 192000)])
    assert e.value.option == 'style_scale'


# ---- tiling (tile_size) ----

GIB = 2 ** 30


def _fake_memory(monkeypatch, host_gib, gpu_gib=None):
    monkeypatch.setattr(memory, 'available_bytes', lambda: host_gib * GIB)
    monkeypatch.setattr(memory, 'gpu_available_bytes',
                        lambda: None if gpu_gib is None else gpu_gib * GIB)


def test_tiled_estimate_is_bounded_by_the_tile():
    c = StyleTransferConfig()
    # The network's part is the tile's; what grows with the image is the state on the host.
    assert memory.tiled_estimate_bytes(3072, 4096, 512, c) < memory.estimate_bytes(3072, 4096, c) / 5
    assert memory.tiled_estimate_bytes(3072, 4096, 512, c) < memory.tiled_estimate_bytes(
        3072, 4096, 1024, c)
    grow = memory.tiled_estimate_bytes(6144, 8192, 512, c) - memory.tiled_estimate_bytes(
        3072, 4096, 512, c)
    assert grow == pytest.approx(memory.tiled_host_bytes(6144, 8192, c)
                                 - memory.tiled_host_bytes(3072, 4096, c))


def test_automatic_tiles_only_when_needed(monkeypatch):
    c = StyleTransferConfig(image_size=2048)
    _fake_memory(monkeypatch, 64)
    assert memory.plan_tile(1536, 2048, c) == 0                  # fits untiled
    _fake_memory(monkeypatch, 4)
    tile = memory.plan_tile(1536, 2048, c)                       # does not: the largest tile
    assert tile and tile % 128 == 0
    assert memory.tiled_estimate_bytes(1536, 2048, tile, c) <= 4 * GIB
    assert memory.tiled_estimate_bytes(1536, 2048, tile + 128, c) > 4 * GIB
    assert memory.plan_tile(1536, 2048, c.replace(tile_size=0)) is None
    assert memory.plan_tile(1536, 2048, c.replace(tile_size=500)) == 496   # the 16 px grid
    assert memory.plan_tile(1536, 2048, c.replace(tile_size=4096)) is None  # one tile: untiled
    memory.check_fits(1536, 2048, c)                             # tiled, it fits: no refusal
    with pytest.raises(TfStyleError, match=r'untiled \(tile_size=0\).*use image_size=\d+ or '
                       r'less, or leave tile_size unset'):
        memory.check_fits(1536, 2048, c.replace(tile_size=0))


def test_on_a_gpu_the_network_must_fit_the_device(monkeypatch):
    c = StyleTransferConfig(image_size=2048)
    _fake_memory(monkeypatch, 64, gpu_gib=6)
    tile = memory.plan_tile(1536, 2048, c)   # fits the host untiled, not the GPU
    assert 0 < tile < 2048
    assert memory.crop_network_bytes(1536, 2048, tile, c) <= 6 * GIB
    assert memory.crop_network_bytes(1536, 2048, tile + 128, c) > 6 * GIB
    _fake_memory(monkeypatch, 64, gpu_gib=0.5)
    with pytest.raises(TfStyleError, match='GiB on the GPU'):
        memory.check_fits(1536, 2048, c)


def test_refused_only_when_no_tile_fits_naming_the_largest_size(monkeypatch):
    c = StyleTransferConfig(image_size=8192)
    _fake_memory(monkeypatch, 8)
    with pytest.raises(TfStyleError, match=r'even tiled.*use image_size=(\d+) or less') as e:
        memory.check_fits(6144, 8192, c)
    assert e.value.option == 'image_size'
    largest = int(re.search(r'image_size=(\d+) or less', str(e.value)).group(1))
    assert 2048 < largest < 8192   # larger than untiled allows, from the tiles
    side = round(largest * 0.75)
    memory.check_fits(side, largest, c.replace(image_size=largest))
    with pytest.raises(TfStyleError):
        memory.check_fits(round((largest + 64) * 0.75), largest + 64, c)


def test_a_refusal_proposes_a_shorter_lbfgs_history_when_it_fits(monkeypatch):
    c = StyleTransferConfig(image_size=8192, precision='float32')
    _fake_memory(monkeypatch, 23.3)
    with pytest.raises(TfStyleError, match=r'or lbfgs_history=(\d+)') as e:
        memory.check_fits(6144, 8192, c)
    pairs = int(re.search(r'lbfgs_history=(\d+)', str(e.value)).group(1))
    assert memory.FEWEST_PAIRS <= pairs < c.lbfgs_history
    shorter = c.replace(lbfgs_history=pairs)
    memory.check_fits(6144, 8192, shorter)
    assert memory.plan_tile(6144, 8192, shorter) >= memory.GOOD_TILE
    _fake_memory(monkeypatch, 12)  # too little even with the fewest pairs: not proposed
    with pytest.raises(TfStyleError) as e:
        memory.check_fits(6144, 8192, c)
    assert 'lbfgs_history' not in str(e.value)


def test_tile_size_is_validated():
    from tf_style.errors import ConfigError
    for bad in (8, -1, 2.5):
        with pytest.raises(ConfigError, match='tile_size') as e:
            StyleTransferConfig(tile_size=bad)
        assert e.value.option == 'tile_size'
    StyleTransferConfig(tile_size=0)
    StyleTransferConfig(tile_size=16)
    # Shallow layers have a finer grid.
    StyleTransferConfig(tile_size=4, content_layers=('conv1_2',), style_layers=('conv2_1',))


def test_running_out_of_memory_all_the_same_is_one_error_naming_a_size(random_extractor,
                                                                       monkeypatch):
    import tensorflow as tf
    from conftest import example
    from tf_style import stylize
    from tf_style.errors import TfStyleError
    from tf_style.optimize import Optimization

    def exhausted(self):
        raise tf.errors.ResourceExhaustedError(None, None, 'OOM when allocating tensor')
    monkeypatch.setattr(Optimization, 'step', exhausted)
    with pytest.raises(TfStyleError, match=r'out of memory at 48x36 px \(untiled\).*use '
                                           r'image_size=\d+ or less') as e:
        stylize(example('tubingen', 48), example('starry_night', 48),
                extractor=random_extractor, image_size=48, iterations=2)
    assert e.value.option == 'image_size'
    message = str(memory.out_of_memory(3072, 4096, 1024, StyleTransferConfig(image_size=4096)))
    assert 'in tiles of 1024 px' in message and 'or a smaller tile_size' in message
