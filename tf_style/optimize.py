"""The optimisation at one scale: the pixels of a tf.Variable image, a compiled step.

The paper optimises the image, not the network: the weights are constants here, and the
optimizer (L-BFGS as in the paper, or Adam) sees one variable.
"""

import contextlib

import numpy as np
import tensorflow as tf

from .adam import MAX_FAULTS, Adam
from .config import StyleTransferConfig
from .lbfgs import LBFGS
from .losses import StyleObjective
from .objective import evaluator


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

    `tile_size` > 0: the objective is evaluated tile by tile (objective.evaluator), and the
    image and the optimizer's state are kept in host memory, where an image larger than a
    GPU's memory fits.
    """

    def __init__(self, objective, extractor, start: np.ndarray, config: StyleTransferConfig,
                 track_best: bool = False, tile_size: int = 0):
        self._layers, self.tile_size = config.layers, tile_size
        with tf.device('/CPU:0') if tile_size else contextlib.nullcontext():
            self.image = tf.Variable(start[None], name='image')
            self.best_loss = tf.Variable(np.inf, dtype=tf.float32, trainable=False)
            self.best_image = tf.Variable(start[None], trainable=False) if track_best else None
            self.optimizer = make_optimizer(config, self.image)
        self._evaluate(objective, extractor)
        # What a checkpoint holds: everything the next iteration depends on.
        self.state = dict(image=self.image, best_loss=self.best_loss, optimizer={
            f'v{i}': v for i, v in enumerate(self.optimizer.variables)})
        if track_best:
            self.state['best_image'] = self.best_image

    def _evaluate(self, objective, extractor):
        """Sets what the step evaluates, and compiles the step."""
        self.extractor = extractor
        self.value_and_gradient = evaluator(objective, extractor, self._layers, self.tile_size)
        self._compile()

    def _compile(self):
        # Without autograph: the step's control flow is written as tf.cond and tf.while_loop,
        # and converting its source (and Keras' below it) costs start-up time in every process.
        self._compiled_step = tf.function(self._step, autograph=False)

    def step(self):
        """One update; returns the latest losses (L-BFGS: after it, Adam: before it)."""
        self.optimizer.prime(self.value_and_gradient)  # eagerly, once: see lbfgs.py
        return self._compiled_step()

    def _step(self):
        """The compiled body of `step`, the TensorFlow tutorial's train_step in two lines."""
        losses, point = self.optimizer.step(self.value_and_gradient)
        self._remember_best(losses['total'], point)
        return losses

    def _remember_best(self, loss, image):
        if self.best_image is None:
            return

        def better():
            self.best_loss.assign(loss)
            self.best_image.assign(image)
        tf.cond(loss < self.best_loss, better, lambda: None)

    def stalled(self) -> bool:
        return self.optimizer.stalled()

    def switch(self, objective, extractor):
        """Goes on from the current image with another objective and network, keeping the
        optimizer's state. In place: a second L-BFGS state would hold 2 x history more copies
        of the image while both exist."""
        self._evaluate(objective, extractor)
        # Losses of another objective do not compare with this one's.
        self.best_loss.assign(np.inf)
        self.optimizer.forget_stall()

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
