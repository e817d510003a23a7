"""Apache Beam: stylization and Gram matrices as `RunInference` model handlers, and a pipeline
that stylizes files on any runner (the DirectRunner here; Dataflow, Flink or Spark elsewhere).

    import apache_beam as beam
    from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
    from tf_style.beam import StylizeModelHandler

    handler = KeyedModelHandler(StylizeModelHandler('starry_night.jpg', image_size=256))
    with beam.Pipeline() as p:
        (p | beam.Create([('photo', photo_array)]) | RunInference(handler)
           | beam.MapTuple(lambda key, result: ...))   # result.inference: H x W x 3 uint8

Each worker process builds the network once (`load_model`) and runs every element through it.
Needs the `beam` extra: `pip install tf_style[beam]`. TensorFlow is imported on the workers
only, when a model is loaded.
"""

import glob
import json
import os
import threading
from typing import Any, Dict, Iterable, Optional, Sequence

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics, MetricsFilter
from apache_beam.ml.inference.base import (KeyedModelHandler, ModelHandler, PredictionResult,
                                           RunInference)

from . import images, vgg_layers
from .config import StyleTransferConfig, check_inputs
from .errors import ConfigError, ImageError

# The dead-letter file stylize_pipeline writes in output_dir: one JSON object a line,
# {"input": path, "stage": "read" | "stylize" | "write", "error": message}.
ERRORS_FILE = 'errors.jsonl'
# Beam counters (namespace, names) that pipeline_counts reads.
COUNTERS = ('tf_style', ('written', 'skipped', 'failed'))


class StylizeModelHandler(ModelHandler[np.ndarray, PredictionResult, Any]):
    """RunInference handler: each element (content, H x W x 3 RGB 0..255) becomes a
    PredictionResult whose `inference` is the stylized image (H' x W' x 3 uint8, long side
    `image_size`).

    `style`: an image (array or file path) or a list of them, read now and sent to the workers
    with the handler. `options`: `tf_style.stylize` settings (StyleTransferConfig fields:
    weights, image_size, iterations, ...), checked now, at pipeline construction.
    `inference_args` given to RunInference override them, but for the network's (weights,
    pooling).
    """

    def __init__(self, style, **options):
        super().__init__()
        self._config = StyleTransferConfig(**options)
        self._styles = _style_images(style)
        check_inputs(self._config, self._styles)

    def load_model(self):
        """The network, built once per worker process (Beam shares it between its threads),
        and each thread's compiled steps, which the images of one size share."""
        from .network import build_extractor
        return _Stylizer(build_extractor(self._config.weights, self._config.pooling))

    def run_inference(self, batch: Sequence[np.ndarray], model,
                      inference_args: Optional[Dict[str, Any]] = None):
        from . import stylize
        config = self._config.replace(**(inference_args or {}))
        # The thread's CompiledSteps keep the style's Gram matrices and each size's compiled
        # step for the next images.
        # normalize_weights normalizes the network on each image's own inputs: stylize builds
        # that network itself.
        extractor = None if config.normalize_weights else model.extractor
        return [PredictionResult(content, stylize(content, self._styles, config=config,
                                                  extractor=extractor,
                                                  steps=model.steps()).image)
                for content in batch]

    def validate_inference_args(self, inference_args: Optional[Dict[str, Any]]):
        fixed = sorted({'weights', 'pooling'} & set(inference_args or {}))
        if fixed:
            raise ConfigError(f'inference_args cannot change {", ".join(fixed)}: the network is '
                              'built by load_model; give them to StylizeModelHandler')
        self._config.replace(**(inference_args or {}))

    def batch_elements_kwargs(self) -> Dict[str, Any]:
        # One element a batch: every content image is its own optimisation, so a batch saves
        # nothing, and a failing image would send its batch-mates to the dead letters too.
        return {'max_batch_size': 1}

    def get_num_bytes(self, batch: Sequence[np.ndarray]) -> int:
        return sum(np.asarray(content).nbytes for content in batch)

    def get_metrics_namespace(self) -> str:
        return 'tf_style_stylize'


class _Stylizer:
    """What StylizeModelHandler.load_model gives its workers: the network, and compiled steps
    per thread (one Optimization must not run in two threads at once)."""

    def __init__(self, extractor):
        self.extractor = extractor
        self._local = threading.local()

    def steps(self):
        from .optimize import CompiledSteps
        if not hasattr(self._local, 'steps'):
            self._local.steps = CompiledSteps()
        return self._local.steps


class FeaturesModelHandler(ModelHandler[np.ndarray, PredictionResult, Any]):
    """RunInference handler: each element (H x W x 3 RGB 0..255) becomes a PredictionResult
    whose `inference` is {'<layer>_gram': C x C float32 array} for each of `layers`, the Gram
    matrix G = F^T F of that layer's features, unnormalised as in the paper (and as the exported
    extractor's `<layer>_gram` outputs); with `include_features`, also {'<layer>': h x w x C}.

    The network is an exported extractor when `saved_model` (a directory written by
    export_extractor) is given, else VGG19 with `weights` and `pooling` (see build_extractor).
    `batching` (min_batch_size, max_batch_size, ...: beam.BatchElements' arguments) sizes the
    batches; the images of a batch that have the same size go through the network together.
    """

    def __init__(self, saved_model: Optional[str] = None, *, weights: str = 'imagenet',
                 pooling: str = 'avg', layers: Sequence[str] = vgg_layers.STYLE_LAYERS,
                 include_features: bool = False, **batching):
        # Not ModelHandler.__init__(**batching): Beam 2.71 takes no arguments there.
        super().__init__()
        self._batching = dict(batching)
        self._saved_model, self._weights, self._pooling = saved_model, weights, pooling
        if isinstance(layers, str):
            layers = layers.split(',')
        self._layers = tuple(dict.fromkeys(vgg_layers.canonical(name) for name in layers))
        if not self._layers:
            raise ConfigError('layers is empty: name at least one VGG19 layer')
        self._include_features = include_features

    def load_model(self):
        if self._saved_model:
            from .export import load_extractor
            return load_extractor(self._saved_model)
        from .network import build_extractor
        return build_extractor(self._weights, self._pooling)

    def run_inference(self, batch: Sequence[np.ndarray], model,
                      inference_args: Optional[Dict[str, Any]] = None):
        outputs = [None] * len(batch)
        for indices in _same_size(batch):
            stacked = np.stack([_rgb(batch[i]) for i in indices])
            for i, result in zip(indices, self._outputs(model, stacked)):
                outputs[i] = PredictionResult(batch[i], result)
        return outputs

    def _outputs(self, model, stacked: np.ndarray) -> Iterable[Dict[str, np.ndarray]]:
        """One {name: array} per image of `stacked` ([N, H, W, 3])."""
        from .losses import gram_matrix
        features = model(stacked, layers=self._layers)
        arrays = {name + '_gram': gram_matrix(value).numpy() for name, value in features.items()}
        if self._include_features:
            arrays.update({name: np.asarray(value, np.float32)
                           for name, value in features.items()})
        return [{name: value[n] for name, value in arrays.items()}
                for n in range(len(stacked))]

    def batch_elements_kwargs(self) -> Dict[str, Any]:
        return self._batching

    def get_num_bytes(self, batch: Sequence[np.ndarray]) -> int:
        return sum(np.asarray(image).nbytes for image in batch)

    def get_metrics_namespace(self) -> str:
        return 'tf_style_features'


def _style_images(style) -> list:
    """`style` (an image or a path, or a list of them) as a list of arrays."""
    is_one = isinstance(style, (str, os.PathLike)) or (
        isinstance(style, np.ndarray) and style.ndim == 3)
    styles = [style] if is_one else list(style)
    if not styles:
        raise ConfigError('style is empty: give at least one style image')
    return [images.load_image(os.fspath(s)) if isinstance(s, (str, os.PathLike)) else _rgb(s)
            for s in styles]


def _rgb(image) -> np.ndarray:
    image = np.asarray(image, np.float32)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ImageError(f'expected an H x W x 3 RGB image, got an array of shape {image.shape}')
    return image


def _same_size(batch) -> list:
    """Indices of `batch`'s images grouped by height and width, in order of first appearance."""
    groups = {}
    for i, image in enumerate(batch):
        groups.setdefault(np.shape(image)[:2], []).append(i)
    return list(groups.values())


# The file pipeline: paths -> skip finished -> read -> RunInference -> write; failures of any
# step go to the dead-letter file instead of failing the pipeline.

def output_path(output_dir: str, path: str) -> str:
    """Where the stylization of input `path` goes: `<output_dir>/<input name>.png`."""
    return os.path.join(output_dir, os.path.splitext(os.path.basename(path))[0] + '.png')


class StylizeFiles(beam.PTransform):
    """PCollection of image paths -> PCollection of the output paths written.

    Each input becomes `output_path(output_dir, input)`, written atomically; one whose output
    exists is skipped unless `overwrite`. An input that fails (unreadable, too small, its output
    would replace it, ...) becomes a line of `<output_dir>/errors.jsonl` (rewritten by each run;
    empty when nothing failed). `style` and `options` are StylizeModelHandler's.
    """

    def __init__(self, style, output_dir: str, *, overwrite: bool = False, **options):
        super().__init__()
        self._handler = KeyedModelHandler(StylizeModelHandler(style, **options))
        self._output_dir, self._overwrite = output_dir, overwrite

    def expand(self, paths):
        todo = paths | 'SkipFinished' >> beam.Filter(_unfinished, self._output_dir,
                                                      self._overwrite)
        read, read_failed = todo | 'Read' >> beam.Map(
            _read, self._output_dir).with_exception_handling()
        stylized, stylize_failed = read | 'Stylize' >> RunInference(
            self._handler).with_exception_handling()
        written, write_failed = stylized | 'Write' >> beam.Map(
            _write, self._output_dir).with_exception_handling()
        errors = (
            (read_failed | 'ReadErrors' >> beam.FlatMap(_dead_letters, 'read', _path),
             stylize_failed.failed_inferences | 'StylizeErrors' >> beam.FlatMap(
                 _dead_letters, 'stylize', _batch_paths),
             write_failed | 'WriteErrors' >> beam.FlatMap(_dead_letters, 'write', _key))
            | 'Errors' >> beam.Flatten())
        _ = errors | 'WriteErrorsFile' >> beam.io.WriteToText(
            os.path.join(self._output_dir, os.path.splitext(ERRORS_FILE)[0]),
            file_name_suffix=os.path.splitext(ERRORS_FILE)[1], num_shards=1,
            shard_name_template='')
        return written


def _unfinished(path: str, output_dir: str, overwrite: bool) -> bool:
    out = output_path(output_dir, path)
    # An output that is the input goes on, for _read to refuse, rather than being skipped.
    if overwrite or not os.path.exists(out) or os.path.samefile(out, path):
        return True
    Metrics.counter(COUNTERS[0], 'skipped').inc()
    return False


def _read(path: str, output_dir: str):
    out = output_path(output_dir, path)
    if os.path.exists(out) and os.path.samefile(out, path):
        raise ImageError(f'the output {out!r} would replace the input: choose another output_dir')
    return path, images.load_image(path)


def _write(keyed_result, output_dir: str) -> str:
    path, result = keyed_result
    out = output_path(output_dir, path)
    images.save_image(out, result.inference)
    Metrics.counter(COUNTERS[0], 'written').inc()
    return out


def _path(element):
    return [element]


def _key(element):
    return [element[0]]


def _batch_paths(batch):
    return [key for key, _ in batch]


def _dead_letters(failure, stage: str, paths_of) -> Iterable[str]:
    """JSON lines for a failure from Beam's exception handling:
    (element, (exception type, repr, formatted traceback lines))."""
    element, (exc_type, _, trace) = failure
    # The traceback's last line is 'module.Type: message'; the message is str(exception).
    last = trace[-1].strip() if trace else ''
    message = last.split(': ', 1)[1] if ': ' in last else ''
    error = f'{exc_type.__name__}: {message}' if message else exc_type.__name__
    for path in paths_of(element):
        Metrics.counter(COUNTERS[0], 'failed').inc()
        yield json.dumps({'input': path, 'stage': stage, 'error': error})


def stylize_pipeline(pipeline_or_options, input_pattern: str, style, output_dir: str, *,
                     overwrite: bool = False, **options):
    """Stylizes every file `input_pattern` (a glob) matches into `output_dir` (see StylizeFiles).

    `pipeline_or_options`: a beam.Pipeline, to which the transforms are added (run it yourself;
    the PCollection of written paths is returned), or PipelineOptions (or None: the
    DirectRunner), with which a pipeline is built, run and waited for (its PipelineResult is
    returned: see pipeline_counts). `style`, `overwrite` and `options` are StylizeFiles'.
    """
    paths = _matches(input_pattern, output_dir)
    transform = StylizeFiles(style, output_dir, overwrite=overwrite, **options)
    if isinstance(pipeline_or_options, beam.Pipeline):
        return (pipeline_or_options | 'Inputs' >> beam.Create(paths)
                | 'StylizeFiles' >> transform)
    pipeline = beam.Pipeline(options=pipeline_or_options)
    _ = pipeline | 'Inputs' >> beam.Create(paths) | 'StylizeFiles' >> transform
    result = pipeline.run()
    result.wait_until_finish()
    return result


def _matches(input_pattern: str, output_dir: str) -> list:
    """The files `input_pattern` matches, checked against `output_dir` before any work."""
    if not os.path.isdir(output_dir) or not os.access(output_dir, os.W_OK):
        raise ImageError(f'output_dir {output_dir!r} is not a writable directory')
    paths = sorted(p for p in glob.glob(input_pattern) if os.path.isfile(p))
    if not paths:
        raise ImageError(f'input_pattern {input_pattern!r} matches no files')
    by_output = {}
    for path in paths:
        other = by_output.setdefault(output_path(output_dir, path), path)
        if other != path:
            raise ImageError(f'input_pattern matches {other!r} and {path!r}, which would both '
                             f'be written to {output_path(output_dir, path)!r}')
    return paths


def pipeline_counts(result) -> Dict[str, int]:
    """{'written', 'skipped', 'failed'}: the images of a finished stylize_pipeline run."""
    namespace, names = COUNTERS
    counts = dict.fromkeys(names, 0)
    for counter in result.metrics().query(MetricsFilter().with_namespace(namespace))['counters']:
        value = counter.committed if counter.committed is not None else counter.attempted
        counts[counter.key.metric.name] += value or 0
    return counts


def dead_letters(output_dir: str) -> list:
    """The failures of the last stylize_pipeline run into `output_dir`, from its errors.jsonl:
    [{'input': path, 'stage': 'read' | 'stylize' | 'write', 'error': message}]."""
    path = os.path.join(output_dir, ERRORS_FILE)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def describe_failures(failures: Sequence[dict], shown: int = 3) -> str:
    """Dead letters in one line: how many, and the first `shown` inputs with their errors."""
    listed = '; '.join(f'{f["input"]} ({f["error"]})' for f in failures[:shown])
    more = f'; {len(failures) - shown} more' if len(failures) > shown else ''
    return f'{len(failures)} failed: {listed}{more}'


def direct_running_mode(pipeline_options) -> Optional[str]:
    """The DirectRunner's direct_running_mode in `pipeline_options` (in_memory,
    multi_threading or multi_processing); None for another runner."""
    from apache_beam.options.pipeline_options import DirectOptions, StandardOptions
    runner = pipeline_options.view_as(StandardOptions).runner
    if (runner or 'direct').lower() in ('direct', 'directrunner'):
        return pipeline_options.view_as(DirectOptions).direct_running_mode
    return None
