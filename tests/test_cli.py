"""The command line as a user meets it: `tf-style`, `python -m tf_style`, flag errors, quiet
runs, the flag reference, and an installed wheel."""

import os
import subprocess
import sys
import sysconfig

import pytest

from conftest import EXAMPLES, ROOT, run_bin

CONTENT = os.path.join(EXAMPLES, 'tubingen.jpg')
STYLE = os.path.join(EXAMPLES, 'starry_night.jpg')


def run_module(*args, cwd=ROOT, python=sys.executable, env=None):
    return subprocess.run([python, '-m', 'tf_style', *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=600, env=env)


def test_dispatcher_needs_a_known_command():
    for args in ((), ('paint',)):
        r = run_module(*args)
        assert r.returncode == 2 and r.stdout == ''
        lines = r.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith('tf-style: error:'), r.stderr
        assert 'stylize' in lines[0]


def test_a_flag_error_is_one_line_with_status_2(tmp_path):
    r = run_module('stylize', f'--content={CONTENT}', f'--style={STYLE}', '--no_such_flag=1')
    assert r.returncode == 2, r.stderr
    assert r.stderr.splitlines() == [r.stderr.strip()]
    assert r.stderr.startswith('tf-style stylize: error:') and 'no_such_flag' in r.stderr
    r = run_bin('stylize', f'--style={STYLE}', f'--output={tmp_path / "o.png"}')
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
    assert r.stderr.startswith('stylize: error:') and '--content' in r.stderr
    r = run_bin('stylize', f'--content={CONTENT}', f'--style={STYLE}', '--style_scale=1,x')
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
    assert not os.listdir(tmp_path)


def test_library_errors_name_the_flag_beside_their_message(tmp_path):
    r = run_bin('stylize', f'--content={CONTENT}', f'--style={STYLE}', '--image_size=8',
                f'--output={tmp_path / "o.png"}')
    assert r.returncode == 2
    assert r.stderr == 'stylize: error: --image_size: image_size must be an integer of at least ' \
                       '16 pixels, got 8\n'


def test_a_path_naming_an_option_is_quoted_exactly(tmp_path):
    """The message is never rewritten: option names inside a path stay as they are."""
    content = tmp_path / 'tile_size' / 'overwrite.jpg'
    r = run_bin('stylize', f'--content={content}', f'--style={STYLE}',
                f'--output={tmp_path / "o.png"}')
    assert r.returncode == 2
    assert r.stderr == f"stylize: error: cannot read image '{content}': no such file\n"


def test_the_flags_an_error_suggests_follow_its_message(monkeypatch):
    from absl import flags
    from tf_style.cli import app
    from tf_style.errors import OutputError
    fv = flags.FlagValues()  # a command with --output and --overwrite, no --check_memory
    flags.DEFINE_boolean('overwrite', False, '', flag_values=fv)
    flags.DEFINE_string('output', None, '', flag_values=fv)
    monkeypatch.setattr(app.flags, 'FLAGS', fv)
    error = OutputError("output 'a/overwrite.png' exists: choose another output, or replace it",
                        option='output', see=('overwrite', 'check_memory'))
    assert app.flag_message(error) == ("--output: output 'a/overwrite.png' exists: choose "
                                       'another output, or replace it (see --overwrite)')
    assert app.flag_message(OutputError('tile_size 0', option='tile_size')) == 'tile_size 0'


@pytest.mark.slow
def test_a_healthy_run_is_quiet_on_stderr(hed_weights, tmp_path):
    """Progress and the last line on stdout; nothing on stderr, TensorFlow's start-up included;
    --quiet: nothing at all; -v 1 brings TensorFlow's lines back."""
    out = tmp_path / 'o.png'
    common = (f'--content={CONTENT}', f'--style={STYLE}', f'--weights={hed_weights}',
              '--image_size=32', '--iterations=2', '--print_every=1', '--overwrite',
              f'--output={out}')
    env = {k: v for k, v in os.environ.items() if k != 'TF_CPP_MIN_LOG_LEVEL'}
    r = run_module('stylize', *common, env=env)
    assert r.returncode == 0 and r.stderr == '', r.stderr
    lines = r.stdout.splitlines()
    # A line at once, another before the first iteration, the first progress line after it.
    assert lines[:2] == ['loading TensorFlow and VGG19 ...',
                         'compiling and running the first iteration ...'], lines
    assert lines[2].startswith('iter 1/2') and 'first iteration' in lines[2]
    assert lines[-1].startswith(f'wrote {out}') and '(start-up ' in lines[-1]
    r = run_module('stylize', *common, '--quiet', env=env)
    assert r.returncode == 0 and r.stdout == '' and r.stderr == ''
    r = run_module('stylize', *common, '--verbosity=1', env=env)
    assert r.returncode == 0 and 'stylize: seed' in r.stderr


@pytest.mark.slow
def test_progress_on_a_terminal_is_a_bar(hed_weights, tmp_path):
    import pty
    out = tmp_path / 'o.png'
    command = [sys.executable, '-m', 'tf_style', 'stylize', f'--content={CONTENT}',
               f'--style={STYLE}', f'--weights={hed_weights}', '--image_size=32',
               '--iterations=2', '--print_every=1', '--tile_size=16', f'--output={out}']
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(ROOT)
        os.execv(sys.executable, command)
    chunks = []
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    text = b''.join(chunks).decode()
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert '\r[##########..........] 1/2' in text and '\nwrote' in text
    assert '\r[....................] 0/2  32x24  style targets: 1/4 tiles' in text
    assert 'cuda' not in text.lower() and 'WARNING' not in text


def test_the_flag_reference_is_current():
    from tf_style.cli import COMMANDS, command_module
    from tf_style.cli.options import markdown_reference
    with open(os.path.join(ROOT, 'docs', 'flags.md')) as f:
        assert f.read() == markdown_reference([(n, command_module(n)) for n in COMMANDS]), \
            'docs/flags.md is stale: python -m tf_style.cli.options > docs/flags.md'


def test_every_config_option_is_a_stylize_flag():
    from absl import flags
    from tf_style.cli import stylize
    from tf_style.cli.options import CONFIG_FIELDS
    fv = flags.FlagValues()
    stylize.define_flags(fv)
    assert set(CONFIG_FIELDS) <= set(fv)
    assert fv['style_scale'].default == [1.0] and fv['seed'].default is None


def test_tile_size_takes_auto_or_pixels():
    from absl import flags
    from tf_style.cli import stylize
    from tf_style.cli.options import config_from_flags
    fv = flags.FlagValues()
    stylize.define_flags(fv)
    for argv, tile in ([], None), (['--tile_size=auto'], None), (['--tile_size=512'], 512), \
            (['--tile_size=0'], 0):
        fv.unparse_flags()
        fv(['stylize', '--content=c.jpg', '--style=s.jpg', *argv])
        assert config_from_flags(fv).tile_size == tile
    with pytest.raises(flags.IllegalFlagValueError, match="integer or 'auto'"):
        fv(['stylize', '--content=c.jpg', '--style=s.jpg', '--tile_size=big'])


@pytest.mark.slow
def test_an_installed_wheel_is_a_command(tmp_path):
    """pip install of a wheel built from the checkout (not editable) into a fresh venv, then
    `tf-style stylize` from another directory, with the checkout out of reach."""
    wheels, venv, work = tmp_path / 'wheels', tmp_path / 'venv', tmp_path / 'work'
    work.mkdir()
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation',
                    '-q', '-w', str(wheels), ROOT], check=True, capture_output=True)
    wheel, = wheels.glob('tf_style-*.whl')
    subprocess.run([sys.executable, '-m', 'venv', str(venv)], check=True)
    python = venv / 'bin' / 'python'
    subprocess.run([python, '-m', 'pip', 'install', '-q', '--no-deps', '--no-index', str(wheel)],
                   check=True, capture_output=True)
    # The dependencies (TensorFlow, ...) from this environment, after the venv's own packages:
    # a plain path entry, so this environment's editable install of the checkout is not seen.
    site = subprocess.run([python, '-c', 'import sysconfig; print(sysconfig.get_path("purelib"))'],
                          capture_output=True, text=True, check=True).stdout.strip()
    with open(os.path.join(site, 'zz_dependencies.pth'), 'w') as f:
        f.write(sysconfig.get_path('purelib') + '\n')
    where = subprocess.run([python, '-c', 'import tf_style; print(tf_style.__file__)'],
                           capture_output=True, text=True, cwd=work, check=True).stdout
    assert where.startswith(str(venv)), where
    out = work / 'out.png'
    r = subprocess.run([venv / 'bin' / 'tf-style', 'stylize', f'--content={CONTENT}',
                        f'--style={STYLE}', '--weights=random', '--image_size=32',
                        '--iterations=1', f'--output={out}'], capture_output=True, text=True,
                       cwd=work, timeout=600)
    assert r.returncode == 0, r.stderr
    assert out.exists() and r.stdout.splitlines()[-1].startswith(f'wrote {out}')
    r = run_module('export-extractor', '--help', cwd=work, python=python)
    assert r.returncode == 0 and '--output_dir' in r.stdout
    # The checkout's bin/ runs the installed package, not the checkout's.
    bin_dir = os.path.join(ROOT, 'bin')
    code = (f'import runpy, sys; sys.path.insert(0, {bin_dir!r}); sys.argv = ["stylize", "--help"]'
            f'\ntry: runpy.run_path({os.path.join(bin_dir, "stylize")!r}, run_name="__main__")'
            '\nexcept SystemExit: pass\nprint(sys.modules["tf_style"].__file__)')
    r = subprocess.run([python, '-c', code], capture_output=True, text=True, cwd=work)
    assert r.returncode == 0 and '--content' in r.stdout, r.stderr
    assert r.stdout.splitlines()[-1].startswith(str(venv))


@pytest.mark.slow
def test_export_stylizer_writes_a_servable_model(tmp_path):
    out = tmp_path / 'stylizer'
    r = run_bin('export_stylizer', f'--output_dir={out}', '--weights=random', '--iterations=2',
                f'--style={STYLE}', '--style_size=32', '--style_layers=conv1_1,conv2_1',
                '--content_layers=conv2_2')
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f'wrote SavedModel {out}')
    code = ('import sys, numpy as np, tensorflow as tf\n'
            'f = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]\n'
            'out = f(content=tf.constant(np.full((24, 32, 3), 128, np.float32)))\n'
            'print(out["image"].dtype.name, out["image"].shape, float(out["loss"]) > 0)')
    r = subprocess.run([sys.executable, '-c', code, str(out)], capture_output=True, text=True)
    assert r.stdout.split() == ['uint8', '(24,', '32,', '3)', 'True'], r.stderr


def test_rates_are_seconds_per_iteration_whatever_the_speed():
    from tf_style.cli import app
    assert app.format_rate(2.414) == '0.414 s/it'
    assert app.format_rate(1 / 38.46) == '38.5 s/it'  # 0.03 it/s would say little
    assert app.format_rate(1 / 9.996) == '10.0 s/it' and app.format_rate(1 / 250.4) == '250 s/it'
    assert app.format_rate(0) == '? s/it'


def _progress(iteration, elapsed, iterations=12):
    from tf_style.transfer import Progress
    return Progress(iteration=iteration, iterations=iterations, scale=0, size=(24, 32),
                    losses={'style': 2.0, 'total': 3.0}, elapsed=elapsed,
                    iterations_per_second=1 / 0.25, eta_seconds=7.0)


def test_the_first_progress_line_comes_at_the_first_iteration(monkeypatch):
    """Called every iteration, the Reporter shows the first at once (its time, no rate: it also
    compiled), then every --print_every with the rate since the last line shown."""
    import types
    from tf_style.cli import app, progress
    said = []
    monkeypatch.setattr(app, 'say', lambda text, end='\n': said.append(text + end))
    for quiet in (False, True):
        said.clear()
        flags = types.SimpleNamespace(quiet=quiet, print_every=5, save_every=0, logdir=None)
        reporter = progress.Reporter(flags, plan=None)
        reporter.tty = False
        for k in range(1, 13):
            reporter(_progress(k, elapsed=9.5 + 0.5 * k))
        reporter.done()
        if quiet:
            assert said == []
            continue
        assert said == [
            'iter 1/12  32x24  style 2  total 3  first iteration 10.0s (compiling included)\n',
            'iter 5/12  32x24  style 2  total 3  0.500 s/it  ETA 7s\n',
            'iter 10/12  32x24  style 2  total 3  0.500 s/it  ETA 7s\n',
            'iter 12/12  32x24  style 2  total 3  0.500 s/it  ETA 7s\n']


def test_tile_stages_are_shown_between_progress_lines(monkeypatch):
    """Without a terminal, a tiled pass's stage is a line only after a quiet minute; on a
    terminal it redraws the bar's line, which is ended before the last line."""
    import types
    from tf_style.cli import app, progress
    from tf_style.transfer import Progress, Stage
    said, clock = [], [0.0]
    monkeypatch.setattr(app, 'say', lambda text, end='\n': said.append(text + end))
    flags = types.SimpleNamespace(quiet=False, print_every=10, save_every=0, logdir=None)
    stage = Stage(iteration=3, iterations=5, scale=1, size=(3072, 4096), what='gradient',
                  tile=2, tiles=6)
    report = Progress(iteration=3, iterations=5, scale=1, size=(3072, 4096),
                        losses={'total': 1.0}, elapsed=1.0, iterations_per_second=0.01,
                        eta_seconds=200.0)
    for tty in (False, True):
        said.clear()
        reporter = progress.Reporter(flags, plan=None, now=lambda: clock[0])
        reporter.tty = tty
        reporter.progress(report)
        reporter.stage(stage)
        clock[0] += 61
        reporter.stage(stage)
        reporter.done()
        if not tty:
            assert said[1:] == ['iter 3/5  4096x3072  gradient: 2/6 tiles\n']
        else:
            assert said[1] == said[2] and said[1].startswith('\r[############........] 3/5  '
                                                             '4096x3072  gradient: 2/6 tiles')
            assert 'ETA 3m20s' in said[1] and said[-1] == '\n'


def test_the_dispatcher_s_help_describes_each_command():
    from tf_style.cli import COMMANDS, command_module
    r = run_module('--help')
    assert r.returncode == 0 and r.stderr == ''
    for name in COMMANDS:
        first = command_module(name).__doc__.strip().splitlines()[0]
        line, = [l for l in r.stdout.splitlines() if l.split()[:1] == [name]]
        assert line.endswith(f'  {first}'), line


def test_stylize_help_groups_its_flags_by_topic_one_line_each():
    from absl import flags
    from tf_style.cli import stylize
    from tf_style.config import TOPICS
    from tf_style.cli.options import CONFIG_FIELDS
    assert all(f.metadata['topic'] in TOPICS for f in CONFIG_FIELDS.values())
    r = run_bin('stylize', '--help')
    assert r.returncode == 0 and r.stderr == ''
    groups, topic = {}, None
    for line in r.stdout.split('\n\n', 1)[1].splitlines():
        if line.endswith(':') and not line.startswith(' '):
            topic = line[:-1]
        elif line.startswith('  --'):
            groups.setdefault(topic, []).append(line.split()[0])
    assert list(groups) == [t for t in TOPICS if t in groups]  # most used first
    assert groups['Inputs and output'][:3] == ['--content', '--style', '--output=out.png']
    assert '--image_size=512' in groups['Size and iterations']
    assert '--preserve_colors=none' in groups['Start and colours']
    assert groups['Other'] == ['--quiet=false']
    fv = flags.FlagValues()
    stylize.define_flags(fv)
    listed = [name.split('=')[0][2:] for names in groups.values() for name in names]
    assert sorted(listed) == sorted({fv[n].name for n in fv} | {'quiet'})  # each once
