"""What a run will do, worked out before any work and without TensorFlow: the size, iterations
and tiles of each scale, the style images' sizes, the memory it needs, and what it writes.

Commands make a plan from the config and the inputs' sizes, report what it refuses, and hand it
to `stylize`, which follows it; `stylize` called without one makes its own. Every size rule lives
here but the long side's (`sized`, from images.py): the coarse-to-fine scales, the style images'
sides.
"""

import dataclasses
import os
from typing import Optional, Sequence, Tuple

from absl import logging

from . import memory, outputs, vgg_layers
from .checkpoint import state_bytes
from .config import StyleTransferConfig, check_inputs
from .images import sized  # the long-side rule, as images.resize_long_side applies it
from .errors import ConfigError, TfStyleError

Size = Tuple[int, int]  # (height, width)


def style_sides(config: StyleTransferConfig, content: Size, count: int) -> Tuple[int, ...]:
    """The long side of each of `count` style images beside a content image of `content` size:
    the content's long side times style_scale."""
    return tuple(max(1, round(max(content) * k)) for k in config.style_scales(count))


def min_side(layers) -> int:
    """Smallest image side that leaves every one of `layers` at least one position."""
    return 2 ** max(map(vgg_layers.halvings, layers))


@dataclasses.dataclass(frozen=True)
class Scale:
    """One scale of the coarse-to-fine schedule (a single-scale run has one)."""
    size: Size                 # the content's (height, width) at this scale
    iterations: int
    styles: Tuple[Size, ...]   # each style image's (height, width) at this scale
    tile: int = 0              # the tile side in pixels; 0: the whole image at once
    fits: bool = True          # whether the memory estimate says it fits

    @property
    def pixels(self) -> int:
        return self.size[0] * self.size[1]


@dataclasses.dataclass(frozen=True)
class Plan:
    """A run of `config`, planned: its scales, memory and checkpoint size, and (once
    `check_outputs` checked them) the paths it writes."""
    config: StyleTransferConfig
    scales: Tuple[Scale, ...]  # coarsest first; the last is the output's size
    memory_bytes: float = 0.0  # the final scale's estimated peak (with its tiles)
    checkpoint_bytes: int = 0
    writes: Optional[outputs.Plan] = None  # the paths it writes, checked (`check_outputs`)
    upscaled: bool = False     # the content is smaller than a quarter of the output

    @property
    def size(self) -> Size:
        return self.scales[-1].size

    @property
    def iterations(self) -> int:
        return sum(scale.iterations for scale in self.scales)


def plan(config: StyleTransferConfig, content: Size, styles: Sequence[Size],
         available: Optional[memory.Memory] = None) -> Plan:
    """The plan of a run of `config` on a content image of `content` size and style images of
    `styles` sizes; `available`: the memory to fit (default: what the machine has now).
    Refuses sizes as `scale_sizes` does."""
    available = available or memory.available()
    scales = [Scale(scale.size, scale.iterations, scale.styles, *_tile(config, scale.size,
                                                                       available))
              for scale in scale_sizes(config, content, styles)]
    final = scales[-1]
    need = (memory.tiled_estimate_bytes(*final.size, final.tile, config) if final.tile else
            memory.estimate_bytes(*final.size, config))
    return Plan(config, tuple(scales), need,
                state_bytes(*final.size, config.optimizer, config.lbfgs_history),
                upscaled=max(content) < config.image_size / 4)


def for_inputs(config: StyleTransferConfig, inputs,
               available: Optional[memory.Memory] = None) -> Plan:
    """`plan` for a run of `inputs` (inputs.RunInputs), after checking that they go together
    with `config` (config.check_inputs: one mask per style, and such)."""
    check_inputs(config, inputs.styles, inputs.content_masks, inputs.style_masks,
                 inputs.init_image, inputs.calibration_images)
    return plan(config, inputs.content.shape[:2], [s.shape[:2] for s in inputs.styles],
                available)


def scale_sizes(config: StyleTransferConfig, content: Size,
                styles: Sequence[Size]) -> Tuple[Scale, ...]:
    """Each scale's sizes and iterations, untiled (`plan` chooses the tiles). Refuses
    (ConfigError) an image that the config's layers leave no position at some scale."""
    scales = []
    for side, iterations in config.schedule():
        size = sized(content, side)
        _check_side('content', size, config.layers)
        style_sizes = tuple(sized(s, n) for s, n in
                            zip(styles, style_sides(config, size, len(styles))))
        for s in style_sizes:
            _check_side('style', s, config.style_layers)
        scales.append(Scale(size, iterations, style_sizes))
    return tuple(scales)


def _check_side(what: str, size: Size, layers):
    need = min_side(layers)
    if min(size) < need:
        raise ConfigError(
            f'the {what} image is {size[1]}x{size[0]} at this size; layer '
            f'{max(layers, key=vgg_layers.depth)} needs a short side of at least {need} px: use '
            'a larger image_size or style_scale, fewer scales, or shallower layers',
            option='image_size')


def _tile(config: StyleTransferConfig, size: Size, available: memory.Memory):
    """(the tile side for a scale of `size`, 0: untiled; whether it fits) as memory.plan_tile
    chooses it. When nothing fits (`check_memory` refuses such a plan; a library call goes on),
    the least demanding tiles."""
    tile = memory.plan_tile(*size, config, available)
    if tile is not None:
        return tile, True
    tile = memory.plan_tile(*size, config, memory.Memory(float('inf')))
    if config.tile_size is None and max(size) > memory.SMALLEST_TILE:
        tile = memory.SMALLEST_TILE
    return tile, False


def log(run: Plan) -> None:
    """Logs the tiles of a run that starts, and the scales that may not fit."""
    for scale in run.scales:
        height, width = scale.size
        if not scale.fits:
            logging.warning('stylize: %dx%d px may not fit in the memory available, with '
                            'tile_size=%d', width, height, scale.tile)
        if scale.tile:
            logging.info('stylize: %dx%d px in tiles of %d px', width, height, scale.tile)


def check_memory(run: Plan) -> None:
    """Refuses a plan whose final scale cannot fit in memory, even tiled, or whose style images
    cannot (TfStyleError naming image_size or style_scale)."""
    memory.check_fits(*run.size, run.config, run.scales[-1].styles)


def check_outputs(run: Plan, output: Optional[str] = None, *, inputs=(), overwrite=False,
                  save_pattern: Optional[str] = None, save_every: int = 0,
                  checkpoint_dir: Optional[str] = None, resume: bool = False,
                  logdir: Optional[str] = None) -> Plan:
    """The plan with every path it writes checked (outputs.plan_outputs): the output image,
    snapshots every `save_every` iterations named by `save_pattern`, checkpoints and
    TensorBoard's logdir. Raises OutputError (or CheckpointError) naming the option."""
    writes = outputs.plan_outputs(
        output, inputs=inputs, size=run.size, overwrite=overwrite or resume,
        save_pattern=save_pattern if save_every else None,
        snapshot_iterations=outputs.snapshot_iterations(run.iterations, save_every),
        checkpoint_dir=checkpoint_dir, resume=resume, checkpoint_bytes=run.checkpoint_bytes,
        logdir=logdir)
    return dataclasses.replace(run, writes=writes)


def plan_jobs(requested: int, images: int, cores: int, gpu: bool, available: float,
              per_image: float) -> int:
    """How many images a batch stylizes at once: `requested`, or when 0 as many as there are
    cores (each image then computes on its own share of them: one image's operations do not
    keep several cores busy, several images' do), that fit the `available` bytes at
    `per_image` each and that there are images; one on a GPU, which runs one step at a time."""
    fitting = max(1.0, available / per_image)  # inf with check_memory=false
    if requested:
        if requested > fitting:
            raise TfStyleError(f'jobs={requested} needs about {requested * per_image / 2**30:.1f}'
                               f' GiB of memory at this image_size, '
                               f'{available / 2**30:.1f} GiB available: use jobs={int(fitting)} or '
                               'less', option='jobs', see=('check_memory',))
        return requested
    return 1 if gpu else int(max(1, min(cores, fitting, images)))


def jobs(config: StyleTransferConfig, requested: int, images: int,
         check_memory: bool = True) -> int:
    """`plan_jobs` on this machine, for a batch of `images` at config.image_size (square: the
    largest an image of the batch can be)."""
    one = memory.estimate_bytes(config.image_size, config.image_size, config) - memory.BASE_BYTES
    available = (memory.available_bytes() - memory.BASE_BYTES if check_memory
                 else float('inf'))
    return plan_jobs(requested, images, os.cpu_count() or 1,
                     memory.gpu_available_bytes() is not None, available, one)
