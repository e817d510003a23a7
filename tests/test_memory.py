from tf_style import memory
from tf_style.config import StyleTransferConfig


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
        < estimate(c.replace(precision='float32')) == estimate(c.replace(precision='auto'))


def test_estimate_errs_high_but_close_on_the_measured_peaks():
    c = StyleTransferConfig()
    for (precision, side), gib in memory.MEASURED_GIB.items():
        estimate = memory.estimate_bytes(side * 3 // 4, side, c.replace(precision=precision))
        assert gib < estimate / 2 ** 30 < 1.2 * gib, (precision, side)


def test_largest_fitting_size():
    c = StyleTransferConfig()
    budget = 8 * 2 ** 30
    size = memory.largest_fitting_size(0.75, c, budget)
    assert size % 64 == 0
    assert memory.estimate_bytes(round(size * 0.75), size, c) <= budget
    assert memory.estimate_bytes(round((size + 64) * 0.75), size + 64, c) > budget


def test_available_memory_is_positive():
    assert memory.available_bytes() > 0


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
