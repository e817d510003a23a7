"""Adam (the TensorFlow tutorial's optimizer) behind the same `step` as L-BFGS.

Not the paper's optimizer. A step whose loss or gradient is not finite leaves the image as it was
and halves the learning rate; `failed()` says when that happened MAX_FAULTS times in a row.
"""

import tensorflow as tf
import keras

MAX_FAULTS = 8


class Adam:
    """`step(value_and_gradient)` -> (losses, the image they were evaluated at), as LBFGS."""

    def __init__(self, variable: tf.Variable, learning_rate: float, beta_1: float,
                 beta_2: float, epsilon: float, bounds=(0.0, 255.0)):
        self.variable = variable
        self.bounds = bounds
        self._adam = keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta_1,
                                           beta_2=beta_2, epsilon=epsilon)
        self._adam.build([variable])
        self._learning_rate = learning_rate
        self.faults = tf.Variable(0, trainable=False)

    @property
    def variables(self):
        return [v.value for v in self._adam.variables] + [self.faults]

    def restart(self):
        """Forgets the moments and step count, for a new start point (assigned by the caller)."""
        for v in self._adam.variables:
            v.assign(tf.zeros_like(v))
        self._adam.learning_rate.assign(self._learning_rate)
        self.faults.assign(0)

    def held(self):
        """None: the losses Adam sees are of the image before its last update."""
        return None

    def prime(self, value_and_gradient):
        """Nothing to evaluate ahead of the compiled step."""

    def step(self, value_and_gradient):
        before = tf.identity(self.variable)
        losses, gradient = value_and_gradient(before)

        def update():
            self._adam.apply_gradients([(gradient, self.variable)])
            self.variable.assign(tf.clip_by_value(self.variable, *self.bounds))
            self.faults.assign(0)

        def skip():
            self._adam.learning_rate.assign(self._adam.learning_rate * 0.5)
            self.faults.assign_add(1)
        tf.cond(tf.logical_and(tf.math.is_finite(losses['total']),
                               tf.reduce_all(tf.math.is_finite(gradient))), update, skip)
        # Adam's losses are of the image before the update.
        return losses, before

    def stalled(self) -> bool:
        return False

    def failed(self) -> bool:
        return int(self.faults.numpy()) >= MAX_FAULTS

    def forget_stall(self):
        """Nothing is kept that an objective change would invalidate."""
