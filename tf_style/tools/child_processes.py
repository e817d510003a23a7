"""The sections of bin/benchmark that time or measure whole `tf_style` child processes, as a
user runs them: memory, tiles (large images), reference (against the plain scipy L-BFGS-B,
which runs in this process), pipelines (images per hour three ways; the exported stylizer).

Each takes plain arguments (paths of the example images among them) and returns its table's
rows as numbers; the command formats and prints them. `should_stop()` is asked before each
measurement: once it says so a section returns early, and the command prints none of what it
returned. A child the same Ctrl-C stopped fails: its error propagates.
"""

import dataclasses
import itertools
import os
import subprocess
import tempfile
import time
from typing import Callable, List, Optional, Sequence, Tuple

from absl import logging

from .. import images
from ..config import StyleTransferConfig
from ..memory import plan_tile
from . import pipelines as pipeline_runs
from . import reference as plain
from .benchmark import content_shape, last_rate, peak_memory_gib, peak_memory_run, time_to_reach


def _never() -> bool:
    return False


def _stylize_twice(content: str, style: str, output: str, weights: str, size: int, *flags):
    """argv of a `tf_style stylize` child: two L-BFGS iterations from the content image, enough
    for its peak memory and a second iteration's time."""
    return ['-m', 'tf_style', 'stylize', '--content', content, '--style', style, '--output',
            output, f'--weights={weights}', f'--image_size={size}', '--iterations=2',
            '--init=content', *flags]


@dataclasses.dataclass
class MemoryRow:
    size: int
    precision: str
    peak_gib: float
    seconds: float  # wall time of the child, start-up included


def memory(content: str, style: str, weights: str, sizes: Sequence[int],
           precisions: Sequence[str], should_stop: Callable[[], bool] = _never
           ) -> List[MemoryRow]:
    """Peak resident memory of `tf_style stylize` per size (ascending) and precision."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sorted(sizes):
            for precision in precisions:
                if should_stop():
                    return rows
                logging.info('benchmark memory: %d px, %s', size, precision)
                start = time.perf_counter()
                gib = peak_memory_gib(_stylize_twice(
                    content, style, os.path.join(tmp, f'{size}_{precision}.png'), weights,
                    size, '--print_every=0', f'--precision={precision}'))
                rows.append(MemoryRow(size, precision, gib, time.perf_counter() - start))
    return rows


def tile_runs(planned: dict) -> List[Tuple[int, str]]:
    """(long side, --tile_size) of the tiles section, from the tile side each size plans
    (`planned`: size -> 0 untiled, pixels, None: does not fit): every size with 'auto', and the
    largest size that fits untiled once more, after its 'auto' run, in the tiles the next size up
    uses (at most half its long side: the next size's tiles may cover it whole; 1024 when no
    larger size is tiled)."""
    sizes = sorted(planned)
    runs = [(size, 'auto') for size in sizes]
    fitting = [size for size in sizes if planned[size] == 0]
    if fitting:
        larger = [planned[size] for size in sizes if size > fitting[-1] and planned[size]]
        tile = min(larger[0] if larger else 1024, fitting[-1] // 2)
        runs.insert(len(fitting), (fitting[-1], str(tile)))
    return runs


@dataclasses.dataclass
class TileRow:
    size: int
    tile_size: str                    # the --tile_size given: 'auto' or pixels
    # The rest stay None when stylize refused the size or failed.
    tile: Optional[int] = None        # the tile side run, px; 0 untiled
    peak_gib: Optional[float] = None
    seconds: Optional[float] = None   # the second iteration's
    overhead: Optional[float] = None  # seconds / the untiled run's of the same size, if any

    @property
    def failed(self) -> bool:
        return self.peak_gib is None


def tiles(content: str, style: str, weights: str, sizes: Sequence[int],
          should_stop: Callable[[], bool] = _never) -> List[TileRow]:
    """Large images (float32): peak memory and s/iteration of `tf_style stylize` with the
    automatic tile size (untiled where that fits), and the tiling overhead (see tile_runs)."""
    image = images.load_image(content)
    planned = {size: plan_tile(*content_shape(image, size), StyleTransferConfig(
        image_size=size, precision='float32')) for size in sizes}
    rows, untiled = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for size, tile_size in tile_runs(planned):
            if should_stop():
                return rows
            logging.info('benchmark tiles: %d px, --tile_size=%s', size, tile_size)
            rows.append(_tile_row(size, tile_size, planned[size], untiled, _stylize_twice(
                content, style, os.path.join(tmp, f'{size}_{tile_size}.png'), weights, size,
                '--print_every=1', '--precision=float32', f'--tile_size={tile_size}')))
    return rows


def _tile_row(size, tile_size, planned, untiled, argv) -> TileRow:
    """Runs `argv`; an untiled run's seconds go into `untiled` (size -> s) for later rows."""
    try:
        gib, stdout = peak_memory_run(argv)
    except subprocess.CalledProcessError:
        return TileRow(size, tile_size)
    seconds = 1 / last_rate(stdout)
    tile = planned if tile_size == 'auto' else int(tile_size)
    if not tile:
        untiled[size] = seconds
    overhead = seconds / untiled[size] if tile and size in untiled else None
    return TileRow(size, tile_size, tile, gib, seconds, overhead)


# Our rows of the reference table: our recommended start and default precision as a user runs
# them, the paper's white-noise start, and mixed precision.
OUR_RUNS = (
    ('content in style colours, auto', ['--init=content_in_style_colors', '--precision=auto']),
    ('white noise, auto', ['--init=noise', '--precision=auto']),
    ('content in style colours, mixed', ['--init=content_in_style_colors',
                                         '--precision=mixed']),
)


@dataclasses.dataclass
class OurRun:
    name: str
    seconds: float              # wall time of the child, start-up included
    loss: float
    reached: Optional[float]    # s the reference took to our loss; None: not within the limit
    speedup: Optional[float]    # reached / seconds


@dataclasses.dataclass
class ReferenceCase:
    size: int
    pair: str                   # 'content:style'
    limit: float                # the reference's time limit, s
    ours: List[OurRun]
    run: plain.ReferenceRun

    @property
    def spent(self) -> float:
        return self.run.points[-1][0]

    @property
    def best(self) -> float:
        return min(loss for _, loss in self.run.points)


def reference(pairs: Sequence[Tuple[str, str, str]], extractor, weights: str,
              sizes: Sequence[int], iterations: int, patience: float,
              should_stop: Callable[[], bool] = _never) -> List[ReferenceCase]:
    """Per size and (name, content path, style path) of `pairs`: OUR_RUNS (`iterations`, child
    processes) against the plain scipy L-BFGS-B reference (tools/reference.py) in this process
    on the float32 `extractor` (built from `weights`), given `patience` x our slowest run."""
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        for size, (pair, content, style) in itertools.product(sizes, pairs):
            if should_stop():
                return cases
            logging.info('benchmark reference: %d px, %s', size, pair)
            ours = _our_runs(['--content', content, '--style', style, f'--weights={weights}',
                              f'--image_size={size}', f'--iterations={iterations}', '--seed=0'],
                             os.path.join(tmp, f'{size}_{len(cases)}'))
            limit = patience * max(seconds for _, seconds, _ in ours)
            run = plain.run_reference(
                images.load_image(content), images.load_image(style), extractor,
                StyleTransferConfig(image_size=size), target=min(loss for _, _, loss in ours),
                max_seconds=limit, should_stop=should_stop)
            if should_stop():
                return cases
            cases.append(ReferenceCase(size, pair, limit, [
                OurRun(name, seconds, loss, time_to_reach(run.points, loss),
                       plain.speedup(run.points, loss, seconds))
                for name, seconds, loss in ours], run))
    return cases


def _our_runs(common: List[str], output: str) -> List[Tuple[str, float, float]]:
    """(name, wall s, final loss) of each of OUR_RUNS with the flags `common`."""
    return [(name, *plain.our_run(common + extra + ['--output', f'{output}_{k}.png']))
            for k, (name, extra) in enumerate(OUR_RUNS)]


@dataclasses.dataclass
class Way:
    name: str
    seconds: float
    written: int      # images the way wrote
    per_hour: float   # content images per hour
    vs_first: float   # the first way's seconds / this one's


@dataclasses.dataclass
class Exported:
    content: str                     # the content image's file name
    stylize: Tuple[float, float]     # (wall s, loss) of tf_style stylize --init=content
    served: Tuple[float, float]      # (wall s, loss) of the exported stylizer's process


def pipelines(contents: Sequence[str], style: str, weights: str, count: int, size: int,
              iterations: int, workers: int, should_stop: Callable[[], bool] = _never,
              on_ways: Callable[[List[Way]], None] = lambda rows: None) -> Optional[Exported]:
    """Images per hour: `count` content images made from `contents` (tools/pipelines.py's
    content_set) x `style` at `size`, `iterations` each, by separate stylize processes, one
    batch process and Beam's DirectRunner with `workers`: `on_ways` gets those rows before the
    exported stylizer is measured against stylize on the first image. None once stopped."""
    settings = ['--style', style, f'--weights={weights}', f'--image_size={size}',
                f'--iterations={iterations}', '--seed=0', '--print_every=0']
    with tempfile.TemporaryDirectory() as tmp:
        made = pipeline_runs.content_set(contents, os.path.join(tmp, 'contents'), count, size)
        rows = _ways(made, settings, workers, tmp, should_stop)
        if rows is None:
            return None
        on_ways(rows)
        ours, served = pipeline_runs.exported_against_stylize(made[0], style, weights,
                                                              iterations, tmp)
    return Exported(os.path.basename(made[0]), ours, served)


def _ways(contents, settings, workers, work_dir, should_stop) -> Optional[List[Way]]:
    folder = os.path.dirname(contents[0])
    runs = [('separate stylize processes',
             lambda out: pipeline_runs.separate_processes(contents, settings, out)),
            ('one batch stylize process',
             lambda out: pipeline_runs.one_batch(folder, settings, out)),
            (f'Beam DirectRunner, {workers} workers',
             lambda out: pipeline_runs.beam_direct(folder, settings, out, workers))]
    rows = []
    for k, (name, run) in enumerate(runs):
        if should_stop():
            return None
        logging.info('benchmark pipelines: %s', name)
        out = os.path.join(work_dir, f'out{k}')
        os.makedirs(out)
        seconds = run(out)
        first = rows[0].seconds if rows else seconds
        rows.append(Way(name, seconds, pipeline_runs.outputs_in(out),
                        len(contents) * 3600 / seconds, first / seconds))
    return rows
