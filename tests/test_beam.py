"""tf_style.beam on the DirectRunner: the RunInference handlers and the file pipeline."""

import json
import os

import numpy as np
import pytest

beam = pytest.importorskip('apache_beam')

from apache_beam.ml.inference.base import KeyedModelHandler, RunInference  # noqa: E402
from apache_beam.options.pipeline_options import PipelineOptions  # noqa: E402
from apache_beam.testing.util import BeamAssertException, assert_that  # noqa: E402

from tf_style import images  # noqa: E402
import numerics  # noqa: E402
from tf_style.beam import (FeaturesModelHandler, StylizeModelHandler, _Stylizer,  # noqa: E402
                           pipeline_counts, stylize_pipeline)
from tf_style.errors import ConfigError, ImageError  # noqa: E402

TINY = dict(weights='random', image_size=32, iterations=2, seed=0)


def _image(seed, shape):
    return np.random.default_rng(seed).uniform(0, 255, shape).astype(np.float32)


def _options(mode):
    # flags=[]: PipelineOptions would otherwise parse pytest's command line.
    return PipelineOptions(flags=[], direct_num_workers=2, direct_running_mode=mode)


@pytest.fixture
def folders(tmp_path):
    """Three tiny images, a corrupt file and a sliver too thin for the network; an empty
    output folder."""
    inputs, outputs = tmp_path / 'in', tmp_path / 'out'
    inputs.mkdir()
    outputs.mkdir()
    for i in range(3):
        images.save_image(str(inputs / f'photo{i}.png'), _image(i, (32, 40, 3)))
    (inputs / 'corrupt.png').write_bytes(b'\x89PNG\r\n\x1a\n not really')
    # 64 x 4 px: 32 x 2 at image_size 32, below block5_conv1's 16 px.
    images.save_image(str(inputs / 'sliver.png'), _image(9, (4, 64, 3)))
    return inputs, outputs


def _errors(outputs):
    with open(outputs / 'errors.jsonl') as f:
        return {os.path.basename(e['input']): e for e in map(json.loads, f)}


@pytest.mark.slow
def test_pipeline_on_two_worker_processes_writes_outputs_and_dead_letters(folders):
    inputs, outputs = folders
    style = _image(5, (32, 32, 3))
    result = stylize_pipeline(_options('multi_processing'), str(inputs / '*'), style,
                              str(outputs), **TINY)
    written = sorted(p.name for p in outputs.glob('*.png'))
    assert written == ['photo0.png', 'photo1.png', 'photo2.png']
    assert images.load_image(str(outputs / 'photo0.png')).shape == (26, 32, 3)
    errors = _errors(outputs)
    assert sorted(errors) == ['corrupt.png', 'sliver.png']
    assert errors['corrupt.png']['stage'] == 'read'
    assert 'ImageError: cannot read image' in errors['corrupt.png']['error']
    assert errors['sliver.png']['stage'] == 'stylize'
    assert 'ConfigError' in errors['sliver.png']['error']
    assert pipeline_counts(result) == {'written': 3, 'skipped': 0, 'failed': 2}

    # A re-run (in this process: the skipping is the same on any runner) writes nothing new.
    mtimes = {p.name: p.stat().st_mtime_ns for p in outputs.glob('*.png')}
    result = stylize_pipeline(_options('in_memory'), str(inputs / '*'), style, str(outputs),
                              **TINY)
    assert {p.name: p.stat().st_mtime_ns for p in outputs.glob('*.png')} == mtimes
    assert pipeline_counts(result) == {'written': 0, 'skipped': 3, 'failed': 2}
    assert sorted(_errors(outputs)) == ['corrupt.png', 'sliver.png']
    assert not [name for name in os.listdir(outputs) if name.startswith('.')]


@pytest.mark.slow
def test_an_output_that_would_replace_its_input_is_a_dead_letter(tmp_path):
    images.save_image(str(tmp_path / 'photo.png'), _image(0, (32, 32, 3)))
    before = (tmp_path / 'photo.png').read_bytes()
    # Added to a pipeline of the caller's, which runs it.
    with beam.Pipeline(options=PipelineOptions(flags=[])) as p:
        written = stylize_pipeline(p, str(tmp_path / '*.png'), _image(5, (32, 32, 3)),
                                   str(tmp_path), overwrite=True, **TINY)
        assert_that(written, lambda paths: _expect(list(paths), []))
    assert (tmp_path / 'photo.png').read_bytes() == before
    errors = _errors(tmp_path)
    assert errors['photo.png']['stage'] == 'read'
    assert 'would replace the input' in errors['photo.png']['error']


@pytest.mark.slow
def test_stylize_handler_runs_stylize_with_its_options(random_extractor):
    import tf_style
    content, style = _image(1, (32, 40, 3)), _image(5, (32, 32, 3))
    handler = StylizeModelHandler(style, **TINY)
    model = _Stylizer(random_extractor)   # what load_model gives a worker
    expected = tf_style.stylize(content, style, extractor=random_extractor, **TINY).image
    for _ in range(2):   # the second image restarts the first one's compiled step
        [result] = handler.run_inference([content], model)
        assert result.example is content
        assert result.inference.dtype == np.uint8
        np.testing.assert_array_equal(result.inference, expected)
    [kept] = model.steps()._kept.values()
    assert kept._compiled_step.experimental_get_tracing_count() == 1


def test_stylize_handler_checks_its_options_at_construction():
    with pytest.raises(ConfigError, match='iterations'):
        StylizeModelHandler(_image(5, (32, 32, 3)), iterations=-1)
    with pytest.raises(ImageError, match='no such file'):
        StylizeModelHandler('/nonexistent/style.jpg')


def test_pipeline_refuses_a_pattern_without_files_and_clashing_outputs(tmp_path):
    with pytest.raises(ImageError, match='input_pattern'):
        stylize_pipeline(None, str(tmp_path / '*.jpg'), _image(5, (32, 32, 3)), str(tmp_path))
    images.save_image(str(tmp_path / 'a.png'), _image(0, (8, 8, 3)))
    images.save_image(str(tmp_path / 'a.jpg'), _image(0, (8, 8, 3)))
    with pytest.raises(ImageError, match='output_dir'):
        stylize_pipeline(None, str(tmp_path / 'a.*'), _image(5, (32, 32, 3)),
                         str(tmp_path / 'out'))
    (tmp_path / 'out').mkdir()
    with pytest.raises(ImageError, match='both be written'):
        stylize_pipeline(None, str(tmp_path / 'a.*'), _image(5, (32, 32, 3)),
                         str(tmp_path / 'out'))


def _expect(actual, expected):
    if actual != expected:
        raise BeamAssertException(f'{actual} != {expected}')


LAYERS = ('block1_conv1', 'block2_conv1')


def _expected_grams(extractor, picture):
    from tf_style.losses import gram_matrix
    features = extractor(picture[None], layers=LAYERS)
    return {name + '_gram': gram_matrix(value).numpy()[0] for name, value in features.items()}


def _grams_match(expected):
    def check(actual):
        got = dict(actual)
        if sorted(got) != sorted(expected):
            raise BeamAssertException(f'keys {sorted(got)} != {sorted(expected)}')
        for key, result in got.items():
            if sorted(result.inference) != sorted(expected[key]):
                raise BeamAssertException(f'{key}: outputs {sorted(result.inference)}')
            for name, gram in expected[key].items():
                numerics.FLOAT32_OTHER_KERNELS.check(result.inference[name], gram, name)
    return check


@pytest.mark.slow
@pytest.mark.parametrize('source', ['network', 'saved_model'])
@pytest.mark.kernels
def test_features_handler_through_run_inference_gives_the_extractors_grams(
        source, random_extractor, tmp_path):
    # Two images of one size (one batch through the network) and one of another.
    pictures = {'a': _image(1, (32, 40, 3)), 'b': _image(2, (32, 40, 3)),
                'c': _image(3, (24, 24, 3))}
    expected = {key: _expected_grams(random_extractor, p) for key, p in pictures.items()}
    if source == 'saved_model':
        from tf_style.export import export_extractor
        handler = FeaturesModelHandler(
            export_extractor(str(tmp_path / 'model'), random_extractor, layers=LAYERS),
            layers=LAYERS)
    else:
        handler = FeaturesModelHandler(weights='random', layers=LAYERS, min_batch_size=3)
    with beam.Pipeline(options=PipelineOptions(flags=[])) as p:
        results = (p | beam.Create(sorted(pictures.items()))
                   | RunInference(KeyedModelHandler(handler)))
        assert_that(results, _grams_match(expected))


@pytest.mark.slow
@pytest.mark.kernels
def test_features_handler_groups_a_batch_by_size(random_extractor):
    handler = FeaturesModelHandler(weights='random', layers=LAYERS, include_features=True)
    pictures = [_image(1, (32, 40, 3)), _image(3, (24, 24, 3)), _image(2, (32, 40, 3))]
    results = handler.run_inference(pictures, random_extractor)
    for picture, result in zip(pictures, results):
        assert result.example is picture
        for name, gram in _expected_grams(random_extractor, picture).items():
            numerics.FLOAT32_OTHER_KERNELS.check(result.inference[name], gram, name)
        assert result.inference['block2_conv1'].shape == (
            picture.shape[0] // 2, picture.shape[1] // 2, 128)


def test_stylize_handler_refuses_inference_args_that_change_the_network():
    handler = StylizeModelHandler(_image(5, (32, 32, 3)), **TINY)
    handler.validate_inference_args({'iterations': 3})
    with pytest.raises(ConfigError, match='weights'):
        handler.validate_inference_args({'weights': 'imagenet'})
    with pytest.raises(ConfigError, match='iterations'):
        handler.validate_inference_args({'iterations': -1})


@pytest.mark.slow
def test_the_stylize_beam_command(tmp_path):
    from conftest import EXAMPLES, run_bin
    photos = _photos(tmp_path / 'in', bad=True)
    out = tmp_path / 'out'
    r = run_bin('stylize_beam', f'--input_pattern={photos}/*.png', f'--output_dir={out}',
                f'--style={os.path.join(EXAMPLES, "starry_night.jpg")}', '--weights=random',
                '--image_size=32', '--iterations=1')
    assert r.returncode == 1, r.stderr
    assert sorted(os.listdir(out)) == ['errors.jsonl', 'p0.png', 'p1.png']
    assert r.stdout.startswith('wrote 2 image(s)') and '1 failed' in r.stdout
    assert 'bad.png' in r.stderr.splitlines()[-1]


def _photos(folder, count=2, bad=False):
    from PIL import Image
    folder.mkdir()
    for i in range(count):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (40, 32, 3), np.uint8)).save(
            folder / f'p{i}.png')
    if bad:
        (folder / 'bad.png').write_bytes(b'junk')
    return folder


@pytest.mark.slow
@pytest.mark.parametrize('mode, bad', [([], False),
                                       (['--direct_num_workers=2',
                                         '--direct_running_mode=multi_processing'], True)])
def test_the_stylize_beam_command_is_quiet(tmp_path, mode, bad):
    """No Beam notices, worker start-up lines or TensorFlow C++ lines: a healthy run writes
    nothing on stderr (but the random weights' warning), a run with a bad input one line."""
    from conftest import EXAMPLES, run_bin
    photos = _photos(tmp_path / 'in', bad=bad)
    out = tmp_path / 'out'
    r = run_bin('stylize_beam', f'--input_pattern={photos}/*.png', f'--output_dir={out}',
                f'--style={os.path.join(EXAMPLES, "starry_night.jpg")}', '--weights=random',
                '--image_size=32', '--iterations=1', *mode)
    assert r.returncode == (1 if bad else 0), r.stderr
    lines = [line for line in r.stderr.splitlines() if 'RANDOM VGG19 WEIGHTS' not in line]
    if bad:
        assert lines == [f'stylize_beam: 1 failed: {photos}/bad.png (ImageError: cannot read '
                         f"image '{photos}/bad.png': not an image file Pillow can read)"], r.stderr
    else:
        assert lines == [], r.stderr
    assert len(r.stderr.splitlines()) <= 2, r.stderr
    assert r.stdout.splitlines()[-1].startswith('wrote 2 image(s)'), r.stdout
    assert sorted(p.name for p in out.glob('*.png')) == ['p0.png', 'p1.png']


def test_the_command_starts_from_the_content_in_the_styles_colours(tmp_path, monkeypatch):
    """What a newcomer gets without flags: the fastest start (a recognisable picture in few
    iterations), and --init=noise when asked for."""
    from absl import flags
    import tf_style.beam
    from conftest import EXAMPLES
    from tf_style.cli import app, stopping, stylize_beam
    used = []
    monkeypatch.setattr(tf_style.beam, 'stylize_pipeline',
                        lambda options, pattern, style, output_dir, **kw: used.append(kw))
    monkeypatch.setattr(tf_style.beam, 'pipeline_counts', lambda result: dict.fromkeys(
        ('written', 'skipped', 'failed'), 0))
    monkeypatch.setattr(app, 'load_tensorflow', lambda: None)
    monkeypatch.setattr(app, 'say', lambda *args, **kwargs: None)
    monkeypatch.setattr(stylize_beam, 'quiet_beam_notices', lambda: None)
    monkeypatch.setattr(stopping, '_CURRENT', [stopping.Stopper()])
    for extra in ([], ['--init=noise', '--iterations=40']):
        fv = flags.FlagValues()
        stylize_beam.define_flags(fv)
        fv(['stylize_beam', f'--input_pattern={tmp_path}/*.png', f'--output_dir={tmp_path}',
            f'--style={os.path.join(EXAMPLES, "starry_night.jpg")}', *extra])
        stylize_beam.main(fv, [])
    assert [(kw['init'], kw['iterations']) for kw in used] == [
        ('content_in_style_colors', 300), ('noise', 40)]


def test_dead_letters_are_summarised_in_one_line(tmp_path):
    from tf_style.beam import dead_letters, describe_failures
    assert dead_letters(str(tmp_path)) == []
    failures = [{'input': f'in/{name}.png', 'stage': 'read', 'error': 'ImageError: bad'}
                for name in 'abcde']
    (tmp_path / 'errors.jsonl').write_text(''.join(json.dumps(f) + '\n' for f in failures))
    assert dead_letters(str(tmp_path)) == failures
    assert describe_failures(failures[:1]) == '1 failed: in/a.png (ImageError: bad)'
    assert describe_failures(failures) == ('5 failed: in/a.png (ImageError: bad); in/b.png '
                                           '(ImageError: bad); in/c.png (ImageError: bad); 2 more')


@pytest.mark.parametrize('args, threads', [
    (['--direct_num_workers=2', '--direct_running_mode=multi_processing'], '4'),
    (['--direct_num_workers=0', '--direct_running_mode=multi_threading'], '1'),
    (['--direct_num_workers=3', '--direct_running_mode=multi_processing'], '2'),
    (['--direct_num_workers=2'], None),  # in_memory: one worker
    (['--runner=DataflowRunner', '--direct_num_workers=2',
      '--direct_running_mode=multi_processing'], None)])
def test_direct_workers_share_the_cores(monkeypatch, args, threads):
    from tf_style.cli.stylize_beam import share_threads
    monkeypatch.delenv('TF_NUM_INTRAOP_THREADS', raising=False)
    share_threads(PipelineOptions(flags=args), cores=8)
    assert os.environ.get('TF_NUM_INTRAOP_THREADS') == threads
