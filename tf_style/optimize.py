"""The optimisation at one scale: the pixels of a tf.Variable image, a compiled step.

The paper optimises the image, not the network: the weights are constants here, and the
optimizer (L-BFGS as in the paper, or Adam) sees one variable.
"""

import collections
import contextlib

import numpy as np
import tensorflow as tf

from . import evaluators
from .adam import MAX_FAULTS, Adam
from .config import StyleTransferConfig
from .lbfgs import LBFGS
from .losses import StyleObjective


class NumericalFault(Exception):
    """The loss or gradient stayed NaN or Inf; the image still holds the last good one."""


def make_optimizer(config: StyleTransferConfig, image: tf.Variable):
    if config.optimizer == 'lbfgs':
        return LBFGS(image, history=config.lbfgs_history, learning_rate=config.step_size,
                     terms=StyleObjective.TERMS)
    return Adam(image, learning_rate=config.step_size, beta_1=config.adam_beta_1,
                beta_2=config.adam_beta_2, epsilon=config.adam_epsilon)


class Optimization:
    """The image variable, the optimizer's state, and the compiled step, at one scale.

    `source`: an extractor, or an evaluation of one (evaluators.choose). One whose
    `host_memory` says so (the tiled one) keeps the image and the optimizer's state in host
    memory, where an image larger than a GPU's memory fits.
    """

    def __init__(self, objective, source, start: np.ndarray, config: StyleTransferConfig,
                 track_best: bool = False):
        self._layers, self.evaluation = config.layers, evaluators.of(source)
        host = self.evaluation.host_memory
        with tf.device('/CPU:0') if host else contextlib.nullcontext():
            self.image = tf.Variable(start[None], name='image')
            self.best_loss = tf.Variable(np.inf, dtype=tf.float32, trainable=False)
            self.best_image = tf.Variable(start[None], trainable=False) if track_best else None
            self.optimizer = make_optimizer(config, self.image)
        self._use(objective, self.evaluation)
        self._compile()
        # What a checkpoint holds: everything the next iteration depends on.
        self.state = dict(image=self.image, best_loss=self.best_loss, optimizer={
            f'v{i}': v for i, v in enumerate(self.optimizer.variables)})
        if track_best:
            self.state['best_image'] = self.best_image

    def _use(self, objective, evaluation):
        """Sets what the step evaluates."""
        self.objective, self.evaluation = objective, evaluation
        self.value_and_gradient = evaluation.value_and_gradient(objective, self._layers)

    @property
    def extractor(self):
        return self.evaluation.extractor

    def _compile(self):
        # Without autograph: the step's control flow is written as tf.cond and tf.while_loop,
        # and converting its source (and Keras' below it) costs start-up time in every process.
        self._compiled_step = tf.function(self._step, autograph=False)

    def step(self):
        """One update; returns the latest losses (L-BFGS: after it, Adam: before it)."""
        self.optimizer.prime(self.value_and_gradient)  # eagerly, once: see lbfgs.py
        # The targets are arguments, not constants of the graph: `restart` reuses the graph.
        return self._compiled_step(self.objective.tensors() if self.evaluation.compiled_targets
                                   else ())

    def _step(self, targets):
        """The compiled body of `step`, the TensorFlow tutorial's train_step in two lines."""
        losses, point = self.optimizer.step(self._evaluator(targets))
        self._remember_best(losses['total'], point)
        return losses

    def _evaluator(self, targets):
        if not self.evaluation.compiled_targets:
            return self.value_and_gradient
        return self.evaluation.value_and_gradient(self.objective.with_tensors(targets),
                                                  self._layers)

    def restart(self, objective, start: np.ndarray):
        """Starts again from `start` with `objective` (the same settings and target shapes: see
        CompiledSteps), keeping the compiled step."""
        self._use(objective, self.evaluation)
        self.image.assign(start[None])
        self.best_loss.assign(np.inf)
        if self.best_image is not None:
            self.best_image.assign(start[None])
        self.optimizer.restart()

    def _remember_best(self, loss, image):
        if self.best_image is None:
            return

        def better():
            self.best_loss.assign(loss)
            self.best_image.assign(image)
        tf.cond(loss < self.best_loss, better, lambda: None)

    def stalled(self) -> bool:
        return self.optimizer.stalled()

    def switch(self, objective, evaluation):
        """Goes on from the current image with another objective and network (its
        evaluation), keeping the optimizer's state. In place: a second L-BFGS state would hold
        2 x history more copies of the image while both exist."""
        self._use(objective, evaluation)
        self._compile()  # another network: another graph
        # Losses of another objective do not compare with this one's.
        self.best_loss.assign(np.inf)
        self.optimizer.forget_stall()

    def held_losses(self, image: np.ndarray):
        """The losses the optimizer already holds for `image` (as floats), when it is the
        current point and was evaluated there; else None."""
        held = self.optimizer.held()
        if held is None or not np.array_equal(image, self.current_image()):
            return None
        return {name: float(value) for name, value in held.items()}

    def current_image(self) -> np.ndarray:
        return self.image.numpy()[0]

    def final_image(self) -> np.ndarray:
        """The lowest-loss image seen when tracking the best, else the current one."""
        if self.best_image is not None:
            # Adam's losses are of the image before each update: the last one is not yet seen.
            current = float(tf.function(
                lambda: self.value_and_gradient(self.image.read_value())[0],
                autograph=False)()['total'])
            if float(self.best_loss.numpy()) < current:
                return self.best_image.numpy()[0]
        return self.current_image()

    def check(self):
        if self.optimizer.failed():
            raise NumericalFault(f'the loss or its gradient was NaN or Inf {MAX_FAULTS} times '
                                 'in a row, even with smaller steps')


class CompiledSteps:
    """Optimizations kept from one run to the next, so that a run whose step matches one seen
    before (the same network, settings and image size: a batch of photos, a video's frames)
    restarts it instead of tracing and compiling a new step, which costs seconds.

    Holds the `capacity` most recently used: each keeps its image and optimizer state (L-BFGS:
    2 x history copies of the image) in memory. `grams` keeps the style images' Gram matrices
    (objective.build_objective's `known_grams`), so that a batch computes them once; several
    CompiledSteps (a batch's threads) may share one dict.
    """

    def __init__(self, capacity: int = 4, grams: dict = None):
        self.capacity = capacity
        self._kept = collections.OrderedDict()
        self.grams = {} if grams is None else grams

    def optimization(self, objective, source, start: np.ndarray, config: StyleTransferConfig,
                     track_best: bool = False) -> Optimization:
        source = evaluators.of(source)
        if not source.compiled_targets:  # nothing to swap in a kept step
            return Optimization(objective, source, start, config, track_best)
        extractor = source.extractor
        key = (start.shape, id(extractor), track_best, objective.settings(), config.layers,
               config.optimizer, config.lbfgs_history, config.step_size, config.adam_beta_1,
               config.adam_beta_2, config.adam_epsilon)
        kept = self._kept.pop(key, None)
        # One that switched networks since (precision.py) compiled another step: not this one.
        if kept is not None and kept.extractor is extractor:
            kept.restart(objective, start)
        else:
            kept = Optimization(objective, source, start, config, track_best)
        self._kept[key] = kept
        while len(self._kept) > self.capacity:
            self._kept.popitem(last=False)
        return kept
