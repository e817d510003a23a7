"""stylize over many content images in one process: the network is built once, several images
are stylized at once (--jobs), one bad image is reported and skipped, a stop (Ctrl-C, SIGTERM)
keeps what is written, and a re-run skips the results that exist."""

import concurrent.futures
import contextlib
import os
import sys
import threading
import time

from .. import files, images, outputs, plan
from ..config import check_inputs
from ..errors import TfStyleError
from . import app
from .options import config_from_flags

# Flags of a single run that a batch does not take.
SINGLE_RUN_FLAGS = ('checkpoint_dir', 'resume', 'save_every', 'labels', 'content_masks',
                    'style_masks', 'logdir', 'calibration_dir')


def make_directories(path: str) -> list:
    """Creates directory `path` and its missing parents; returns those it created, outermost
    first."""
    created, folder = [], os.path.abspath(path)
    while not os.path.exists(folder):
        created.insert(0, folder)
        folder = os.path.dirname(folder)
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise TfStyleError(f'output_dir {path!r} cannot be created: {e.strerror or e}',
                           option='output_dir') from None
    return created


def output_path(output_dir: str, content: str) -> str:
    return os.path.join(output_dir, os.path.splitext(os.path.basename(content))[0] + '.png')


def run(FLAGS, contents, stop):
    given = [name for name in SINGLE_RUN_FLAGS if FLAGS[name].present]
    if given:
        raise TfStyleError(f'--{given[0]} is for one content image, not a batch')
    if not FLAGS.output_dir:
        raise TfStyleError('several --content images need --output_dir')
    outputs.check_writable(FLAGS.output_dir, what='output_dir', kind='dir')
    init, init_file = files.init_setting(FLAGS.init)
    config = config_from_flags(FLAGS, init=init)
    styles = [images.load_image(path) for path in FLAGS.style]
    init_image = images.load_image(init_file) if init_file else None
    check_inputs(config, styles, init_image=init_image)
    # Made now that the inputs are known to be good (as stylize-beam does); removed again if
    # the run is refused before it starts.
    created = make_directories(FLAGS.output_dir)
    try:
        todo = [(content, output_path(FLAGS.output_dir, content)) for content in contents
                if FLAGS.overwrite or not os.path.exists(output_path(FLAGS.output_dir, content))]
        skipped = len(contents) - len(todo)
        outputs.plan_outputs(
            inputs=[*FLAGS.style, *contents, *([init_file] if init_file else [])],
            overwrite=True, extra=[outputs.Planned('output_dir', out,
                                                   via=f'{FLAGS.output_dir!r}, file ')
                                   for _, out in todo])
        if skipped:
            app.say(f'skipping {skipped} image(s) already in {FLAGS.output_dir} (--overwrite '
                    'replaces them)')

        app.say('loading TensorFlow and VGG19 ...')
        app.load_tensorflow()
        jobs = _jobs(FLAGS, config, len(todo))
        from ..network import build_extractor
        extractor = None if config.normalize_weights else build_extractor(config.weights,
                                                                            config.pooling)
    except TfStyleError:
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                os.rmdir(folder)
        raise
    from ..transfer import stylize
    start = time.perf_counter()
    stop.begin('stopping after this iteration; unfinished images are not written')
    results = _stylize_all(todo, jobs, stop, lambda content, steps, progress: stylize(
        images.load_image(content), styles, config=config, extractor=extractor,
        init_image=init_image, steps=steps, should_stop=stop, callback=progress,
        report_every=0 if FLAGS.quiet else FLAGS.print_every))
    written = [content for content, status in results if status == 'written']
    failed = [content for content, status in results if status == 'failed']
    summary = (f'wrote {len(written)} of {len(todo)} image(s) to {FLAGS.output_dir} in '
               f'{app.format_total(time.perf_counter() - start)}')
    if stop.signal:
        app.tell(f'{summary}: stopped, the unfinished images not written (run the same command '
                 'again to go on)')
        sys.exit(128 + stop.signal)
    app.say(summary + (f'; failed: {", ".join(failed)}' if failed else ''))
    if failed:
        sys.exit(1)


def _jobs(FLAGS, config, images_todo: int) -> int:
    """--jobs as plan.jobs decides it, with TensorFlow's threads shared out among the jobs."""
    jobs = plan.jobs(config, FLAGS.jobs, images_todo, FLAGS.check_memory)
    if jobs > 1:
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(max(1, (os.cpu_count() or 1) // jobs))
        app.say(f'{images_todo} image(s), {jobs} at a time')
    return jobs


def _stylize_all(todo, jobs: int, stop, stylize):
    """[(content, 'written' | 'failed' | 'stopped')] for `todo` [(content, output)], `jobs`
    images at a time by `stylize(content, steps, progress)`, each thread keeping its own
    compiled steps (their style Grams shared); none starts once `stop()` says so. Progress is
    a line per report, `[k/n] iter ...`, never redrawn in place: several images share stdout."""
    from ..optimize import CompiledSteps
    grams, local, printing = {}, threading.local(), threading.Lock()

    def say(message, tell=False):
        with printing:
            (app.tell if tell else app.say)(message)

    def one(k, content, out):
        if stop():
            return content, 'stopped'
        if not hasattr(local, 'steps'):  # images of one size share their compiled steps
            local.steps = CompiledSteps(grams=grams)
        label = f'[{k}/{len(todo)}]'
        say(f'{label} {content}')
        try:
            result = stylize(content, local.steps, lambda p: say(
                f'{label} iter {p.iteration}/{p.iterations}  {app.progress_text(p)}'))
        except TfStyleError as e:
            say(f'{content}: {app.flag_message(e)}', tell=True)
            return content, 'failed'
        if not result.completed and stop():
            return content, 'stopped'
        images.save_image(out, result.image)
        say(f'wrote {out} in {app.format_seconds(result.seconds)}, loss '
            f'{result.losses["total"]:.4g}')
        return content, 'written'

    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        futures = [pool.submit(one, k, content, out)
                   for k, (content, out) in enumerate(todo, 1)]
        return [future.result() for future in futures]
