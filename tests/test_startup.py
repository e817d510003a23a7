"""tf_style.tools.startup: every part of a fresh process's start-up, timed."""

import pytest

from tf_style.tools import startup


@pytest.mark.slow
def test_every_part_is_timed_in_a_fresh_process():
    times = startup.startup_parts('random', size=32)
    assert set(startup.PARTS) <= set(times) and times['precision'] in ('float32', 'mixed')
    assert all(times[part] >= 0 for part in startup.PARTS)
    # TensorFlow was imported in that process, not this one's import reused.
    assert times['import tensorflow (and find devices)'] > 0.5
