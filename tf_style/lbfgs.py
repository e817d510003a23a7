"""L-BFGS on a tf.Variable, every step inside the caller's tf.function.

The paper optimised with L-BFGS, and for this problem it reaches a given loss in far fewer
function evaluations than Adam. SciPy's L-BFGS would cost a device-to-host copy of the image and
its gradient every iteration; this one keeps its state in tf.Variables (so it runs on a GPU and
can be checkpointed) and does the two-loop recursion over an unrolled, fixed-size history.

Each iteration: the quasi-Newton direction d = -H g; a trial step of `learning_rate` along it;
the trial point projected onto the pixel box; halving the step until the Armijo condition holds
with a strict decrease. Without curvature pairs (the first iteration, after a reset, or while
every pair has s.y <= 0, which this non-convex loss produces near the content image) the step is
steepest descent that first moves the most-changed pixel by FIRST_STEP (16 levels) and doubles
while it is accepted. (From 1 level, tubingen x starry_night at 256 px from the content image
spent its first 3 iterations growing the step, and reached the loss of 300 tutorial-Adam steps
after 41 evaluations instead of 37. Torch's 1/|g|_1 scaling of that first step is so small on
large images that the loss does not change in float32, and a step that changes nothing is no
progress.) The accepted point's losses and gradient are kept for the next iteration, so an
iteration costs one evaluation unless it backtracks. The step's graph holds the objective once
(the trials are one do-while loop, and `prime` evaluates the start point eagerly): every copy of
VGG19 and its gradient in a graph costs seconds of tracing. (Torch's L-BFGS without line search,
as jcjohnson/neural-style runs it, overshoots badly on this problem in float32: losses jump a
hundredfold within the first 10 iterations.)
"""

import tensorflow as tf

ARMIJO = 1e-4
MAX_BACKTRACKS = 8
# Without curvature pairs, the steepest-descent step first moves the most-changed value by this
# much (for images: pixel levels); backtracking halves it when that is too far.
FIRST_STEP = 16.0
MAX_STEEPEST_STEP = 64.0


# Marks a method without tensor-dependent control flow: autograph need not convert it
# (converting costs tracing time in every process).
_plain = tf.autograph.experimental.do_not_convert


class LBFGS:
    """Limited-memory BFGS for one variable with box bounds.

    `step(value_and_gradient)` runs one iteration, where `value_and_gradient(x)` returns
    `(losses, gradient)` for a tensor shaped like the variable, `losses['total']` the objective.
    """

    def __init__(self, variable: tf.Variable, history: int = 10, learning_rate: float = 1.0,
                 bounds=(0.0, 255.0), terms=('total',)):
        if history < 1:
            raise ValueError(f'history must be at least 1, got {history}')
        self.variable = variable
        self.history = int(history)
        self.learning_rate = float(learning_rate)
        self.bounds = bounds
        n = int(tf.size(variable))
        zeros = lambda *shape: tf.Variable(tf.zeros(shape, tf.float32), trainable=False)
        # Newest pair first: s_k = x_{k+1} - x_k, y_k = g_{k+1} - g_k, rho_k = 1 / (y_k . s_k).
        self.s = zeros(self.history, n)
        self.y = zeros(self.history, n)
        self.rho = zeros(self.history)
        self.pairs = tf.Variable(0, dtype=tf.int32, trainable=False)
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.evaluations = tf.Variable(0, dtype=tf.int64, trainable=False)
        # Largest change of a value that the next steepest-descent step makes.
        self.steepest_step = tf.Variable(FIRST_STEP, trainable=False)
        # Set when even a steepest-descent step no longer decreases the loss.
        self.converged = tf.Variable(False, trainable=False)
        # The losses (`terms`, the keys value_and_gradient returns; 'total' is the objective) and
        # the gradient at the variable's value, valid once evaluated (prime, or iteration 1).
        self.terms = tuple(terms)
        self.losses = zeros(len(self.terms))
        self.gradient = zeros(n)
        self.evaluated = tf.Variable(False, trainable=False)
        self._primed = False

    @property
    def variables(self):
        return [self.s, self.y, self.rho, self.pairs, self.iterations, self.evaluations,
                self.converged, self.steepest_step, self.losses, self.gradient, self.evaluated]

    @_plain
    def _evaluator(self, value_and_gradient):
        shape = tf.shape(self.variable)

        def evaluate(x):
            self.evaluations.assign_add(1)
            losses, gradient = value_and_gradient(tf.reshape(x, shape))
            # A static length: the trial loop needs its variables' shapes fixed, and a gradient
            # through a SavedModel has none.
            return losses, tf.reshape(tf.cast(gradient, tf.float32), self.gradient.shape)
        return evaluate

    @_plain
    def _keep(self, losses, gradient):
        self.losses.assign(tf.stack([tf.cast(losses[k], tf.float32) for k in self.terms]))
        self.gradient.assign(gradient)
        self.evaluated.assign(True)

    @_plain
    def _kept(self):
        return {k: self.losses[i] for i, k in enumerate(self.terms)}

    def prime(self, value_and_gradient):
        """Evaluates the start point now (call it eagerly, before the compiled step), so that the
        step's graph holds no evaluation for it. Does nothing once evaluated."""
        if not self._primed:
            self._evaluate_start(self._evaluator(value_and_gradient),
                                 tf.reshape(self.variable, [-1]))
            self._primed = True

    def _evaluate_start(self, evaluate, x):
        """Evaluates and keeps the start point `x` unless that was done (prime or step)."""
        if not self.evaluated:
            self._keep(*evaluate(x))

    def step(self, value_and_gradient):
        """One iteration; returns the losses at the new point."""
        evaluate = self._evaluator(value_and_gradient)
        x = tf.reshape(self.variable, [-1])
        if not self._primed:  # decided when the step is traced
            self._evaluate_start(evaluate, x)
        if self.converged:
            losses = self._kept()
        else:
            losses = self._iterate(evaluate, x)
        self.iterations.assign_add(1)
        return losses

    def _iterate(self, evaluate, x):
        f, g = self.losses[self.terms.index('total')], self.gradient.read_value()

        direction = self._direction(g)
        if tf.reduce_sum(direction * g) >= 0.0:
            # Not a descent direction (stale curvature): forget it and go downhill.
            self.pairs.assign(0)
            direction = -g
        steepest = self.pairs == 0
        g_max = tf.reduce_max(tf.abs(g)) + 1e-30
        step = tf.cond(steepest, lambda: self.steepest_step / g_max,
                       lambda: tf.constant(self.learning_rate))

        @_plain
        def trial(t):
            x_new = tf.clip_by_value(x + t * direction, *self.bounds)
            losses, g_new = evaluate(x_new)
            f_new = losses['total']
            # Armijo, and a strict decrease: a step too small to change the loss is no step.
            ok = tf.logical_and(tf.math.is_finite(f_new), tf.logical_and(
                f_new < f, f_new <= f + ARMIJO * tf.reduce_sum(g * (x_new - x))))
            return x_new, losses, g_new, ok

        # The trials as a do-while loop, so that the graph evaluates the objective in one place.
        x_new, losses, g_new, ok = x, self._kept(), g, tf.constant(False)
        tries = tf.constant(0)
        while tf.logical_and(tf.logical_not(ok), tries < MAX_BACKTRACKS):
            step = tf.where(tries > 0, step * 0.5, step)
            x_new, losses, g_new, ok = trial(step)
            tries += 1

        if ok:
            if steepest:
                # Steepest descent until a curvature pair is kept: grow the step while it works.
                self.steepest_step.assign(tf.minimum(2.0 * step * g_max, MAX_STEEPEST_STEP))
            self._remember(x_new - x, g_new - g)
            self.variable.assign(tf.reshape(x_new, tf.shape(self.variable)))
            self._keep(losses, g_new)
        else:
            # No decrease even with a tiny step: restart from steepest descent next time, or
            # stop if that was steepest descent already. The variable stays where it was.
            self.converged.assign(self.pairs == 0)
            self.pairs.assign(0)
            losses = self._kept()
        return losses

    def _remember(self, s, y):
        ys = tf.reduce_sum(y * s)
        if ys > 1e-10:
            self.s.assign(tf.concat([s[None], self.s[:-1]], axis=0))
            self.y.assign(tf.concat([y[None], self.y[:-1]], axis=0))
            self.rho.assign(tf.concat([[1.0 / ys], self.rho[:-1]], axis=0))
            self.pairs.assign(tf.minimum(self.pairs + 1, self.history))

    @_plain
    def _direction(self, g):
        """-H g by the two-loop recursion over the stored pairs."""
        q = g
        alphas = []
        for i in range(self.history):
            valid = tf.cast(i < self.pairs, tf.float32)
            alpha = valid * self.rho[i] * tf.reduce_sum(self.s[i] * q)
            q = q - alpha * self.y[i]
            alphas.append(alpha)
        yy = tf.reduce_sum(self.y[0] * self.y[0])
        gamma = tf.where(self.pairs > 0, tf.reduce_sum(self.s[0] * self.y[0]) / (yy + 1e-30), 1.0)
        r = gamma * q
        for i in reversed(range(self.history)):
            valid = tf.cast(i < self.pairs, tf.float32)
            beta = self.rho[i] * tf.reduce_sum(self.y[i] * r)
            r = r + valid * (alphas[i] - beta) * self.s[i]
        return -r
