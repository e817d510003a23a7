"""L-BFGS on a tf.Variable, every step inside the caller's tf.function.

The paper optimised with L-BFGS, and for this problem it reaches a given loss in far fewer
function evaluations than Adam. SciPy's L-BFGS would cost a device-to-host copy of the image and
its gradient every iteration; this one keeps its state in tf.Variables (so it runs on a GPU and
can be checkpointed) and does the two-loop recursion over the pairs it holds, in a fixed-size
history.

Each iteration: the quasi-Newton direction d = -H g, from an initial inverse Hessian
GAMMA_SCALE times the textbook one; a trial step of `learning_rate` along it;
the trial point projected onto the pixel box; halving the step until the Armijo condition holds
with a strict decrease. Without curvature pairs (the first iteration, after a reset, or while
every pair has s.y <= 0, which this non-convex loss produces near the content image) the step is
steepest descent that first moves the most-changed value by FIRST_STEP (half the pixel range)
and doubles, up to MAX_STEEPEST_STEP, while it is accepted: Torch's 1/|g|_1 scaling of that
first step is so small on large images that the loss does not change in float32, and a step
that changes nothing is no progress. The accepted point's losses and gradient are kept for the
next iteration, so an iteration costs one evaluation unless it backtracks. The step's graph
holds the objective once (the trials are one do-while loop, and `prime` evaluates the start
point eagerly): every copy of VGG19 and its gradient in a graph costs seconds of tracing. (Torch's
L-BFGS without a line search, as jcjohnson/neural-style runs it, overshoots on this problem in
float32.) docs/notes/benchmark-record.md has the measurements behind these choices.
"""

import tensorflow as tf

ARMIJO = 1e-4
MAX_BACKTRACKS = 8
# Without curvature pairs, the steepest-descent step first moves the most-changed value by this
# much (for images: pixel levels); backtracking halves it when that is too far. Later steepest
# steps (after a restart) grow from the last accepted one, up to MAX_STEEPEST_STEP.
FIRST_STEP = 128.0
MAX_STEEPEST_STEP = 64.0
# Where we depart from the textbook L-BFGS (Nocedal & Wright, eq. 7.20, as SciPy's): the
# initial inverse Hessian is this many times gamma = s.y / y.y of the newest pair, which sizes
# the step in the directions the pairs have not explored. With the textbook gamma the paper's
# loss goes on falling well past the unit step (an accepted step leaves about a fifth of the
# directional derivative); scaled, the same number of evaluations mostly reaches a lower loss,
# and much larger scales overshoot and backtrack (docs/notes/benchmark-record.md, "The initial
# inverse Hessian").
GAMMA_SCALE = 2.0
# Every loop over image-sized vectors runs its iterations one at a time. TensorFlow's default
# (10 in flight) let the two-loop recursion gather all the pairs' rows at once, ahead of the
# products that need them: 2 x history more copies of the image, more than the history itself.
ONE_AT_A_TIME = 1


class LBFGS:
    """Limited-memory BFGS for one variable with box bounds.

    `step(value_and_gradient)` runs one iteration, where `value_and_gradient(x)` returns
    `(losses, gradient)` for a tensor shaped like the variable, `losses['total']` the objective;
    it returns the losses at the new point, and that point (the variable).
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
        # The pairs held when a line search last found no decrease (-1: none has failed yet).
        self.stalled_pairs = tf.Variable(-1, dtype=tf.int32, trainable=False)
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
                self.converged, self.stalled_pairs, self.steepest_step, self.losses,
                self.gradient, self.evaluated]

    def stalled(self) -> bool:
        """Whether a line search has found no decrease (the loss can go no lower along its
        directions, or rounding hides what is left)."""
        return int(self.stalled_pairs) >= 0

    def failed(self) -> bool:
        """Never: a non-finite trial point is never accepted."""
        return False

    def forget_stall(self):
        """Goes on from the current point as if the last line search had not failed: with the
        curvature pairs held before it and no kept evaluation, for an objective that changed
        (a more exact one), which the next step evaluates there first."""
        self.pairs.assign(tf.maximum(self.pairs, self.stalled_pairs))
        self.stalled_pairs.assign(-1)
        self.converged.assign(False)
        self.evaluated.assign(False)
        self._primed = False

    def restart(self):
        """Forgets everything learnt, for a new start point (the variable, assigned by the
        caller): the next step starts with steepest descent, as a new LBFGS would."""
        self.pairs.assign(0)
        self.iterations.assign(0)
        self.evaluations.assign(0)
        self.steepest_step.assign(FIRST_STEP)
        self.converged.assign(False)
        self.stalled_pairs.assign(-1)
        self.evaluated.assign(False)
        self._primed = False

    def _evaluator(self, value_and_gradient):
        shape = tf.shape(self.variable)

        def evaluate(x):
            self.evaluations.assign_add(1)
            losses, gradient = value_and_gradient(tf.reshape(x, shape))
            # A static length: the trial loop needs its variables' shapes fixed, and a gradient
            # through a SavedModel has none.
            return losses, tf.reshape(tf.cast(gradient, tf.float32), self.gradient.shape)
        return evaluate

    def _keep(self, losses, gradient):
        self.losses.assign(tf.stack([tf.cast(losses[k], tf.float32) for k in self.terms]))
        self.gradient.assign(gradient)
        self.evaluated.assign(True)

    def _kept(self):
        return {k: self.losses[i] for i, k in enumerate(self.terms)}

    def held(self):
        """The losses at the variable's value, when evaluated there (else None)."""
        return self._kept() if bool(self.evaluated) else None

    def prime(self, value_and_gradient):
        """Evaluates the start point now (call it eagerly, before the compiled step), so that the
        step's graph holds no evaluation for it. Does nothing once evaluated."""
        if not self._primed:
            self._evaluate_start(self._evaluator(value_and_gradient),
                                 tf.reshape(self.variable, [-1]))
            self._primed = True

    def _evaluate_start(self, evaluate, x):
        """Evaluates and keeps the start point `x` unless that was done (prime or step)."""
        tf.cond(self.evaluated, lambda: None, lambda: self._keep(*evaluate(x)))

    # The step's control flow on tensors is written as tf.cond and tf.while_loop, so autograph
    # need not convert it, nor anything it calls, in a caller's tf.function (converting its source
    # cost a second of tracing in every process).
    @tf.autograph.experimental.do_not_convert
    def step(self, value_and_gradient):
        """One iteration; returns the losses at the new point and the point."""
        evaluate = self._evaluator(value_and_gradient)
        x = tf.reshape(self.variable, [-1])
        if not self._primed:  # decided when the step is traced
            self._evaluate_start(evaluate, x)
        losses = tf.cond(self.converged, self._kept, lambda: self._iterate(evaluate, x))
        self.iterations.assign_add(1)
        return losses, self.variable

    def _iterate(self, evaluate, x):
        f, g = self.losses[self.terms.index('total')], self.gradient.read_value()

        direction = self._direction(g)
        # Not a descent direction (stale curvature): forget it and go downhill.
        descent = tf.reduce_sum(direction * g) < 0.0
        self.pairs.assign(tf.where(descent, self.pairs, 0))
        direction = tf.where(descent, direction, -g)
        steepest = self.pairs == 0
        g_max = tf.reduce_max(tf.abs(g)) + 1e-30
        initial = tf.where(steepest, self.steepest_step / g_max, self.learning_rate)

        step, x_new, losses, g_new, ok = line_search(evaluate, x, f, g, direction, initial,
                                                     self.bounds, self._kept())

        def accept():
            # Steepest descent until a curvature pair is kept: grow the step while it works.
            self.steepest_step.assign(tf.where(
                steepest, tf.minimum(2.0 * step * g_max, MAX_STEEPEST_STEP), self.steepest_step))
            self._remember(x_new - x, g_new - g)
            self.variable.assign(tf.reshape(x_new, tf.shape(self.variable)))
            self._keep(losses, g_new)
            return losses

        def give_up():
            # No decrease even with a tiny step: restart from steepest descent next time, or
            # stop if that was steepest descent already. The variable stays where it was.
            self.converged.assign(self.pairs == 0)
            self.stalled_pairs.assign(self.pairs)
            self.pairs.assign(0)
            return self._kept()
        return tf.cond(ok, accept, give_up)

    def _remember(self, s, y):
        ys = tf.reduce_sum(y * s)

        def push():
            kept = tf.minimum(self.pairs, self.history - 1)
            for history, row in ((self.s, s), (self.y, y), (self.rho, 1.0 / ys)):
                _push_front(history, row, kept)
            self.pairs.assign(kept + 1)
        tf.cond(ys > 1e-10, push, lambda: None)

    def _direction(self, g):
        """-H g over the stored pairs (two_loop_direction)."""
        # Rows are gathered from the variables one at a time: reading a whole [history, n]
        # variable into the loops kept a second copy of it alive.
        return two_loop_direction(g, self.s.sparse_read, self.y.sparse_read,
                                  self.rho.read_value(), self.pairs.read_value(), self.history)


def _push_front(history: tf.Variable, row, kept):
    """Moves rows 0 .. kept-1 of `history` one down and writes `row` as row 0, in place, a row
    at a time: concatenating the new row to the old rows made a second copy of the whole history
    (for s and y, 2 x history copies of the image) before assigning it."""
    def move(i):
        history.scatter_update(tf.IndexedSlices(history.sparse_read([i - 1]), [i]))
        return (i - 1,)
    tf.while_loop(lambda i: i > 0, move, (kept,), parallel_iterations=ONE_AT_A_TIME)
    history.scatter_update(tf.IndexedSlices(tf.convert_to_tensor(row)[None], [0]))


def line_search(evaluate, x, f, g, direction, initial, bounds, kept):
    """Backtracking from step `initial` along `direction`, projected onto `bounds`, halving the
    step until the Armijo condition holds with a strict decrease (at most MAX_BACKTRACKS
    trials). Returns (step, x_new, losses, g_new, ok); `kept` (the losses at x) shapes the loop.

    The trials are a do-while loop, so that the graph evaluates the objective in one place.
    """
    def trial(step, tries, *_):
        step = tf.where(tries > 0, step * 0.5, step)
        x_new = tf.clip_by_value(x + step * direction, *bounds)
        losses, g_new = evaluate(x_new)
        f_new = losses['total']
        # Armijo, and a strict decrease: a step too small to change the loss is no step.
        ok = tf.logical_and(tf.math.is_finite(f_new), tf.logical_and(
            f_new < f, f_new <= f + ARMIJO * tf.reduce_sum(g * (x_new - x))))
        return step, tries + 1, x_new, losses, g_new, ok

    step, _, x_new, losses, g_new, ok = tf.while_loop(
        lambda step, tries, x_new, losses, g_new, ok: tf.logical_and(
            tf.logical_not(ok), tries < MAX_BACKTRACKS),
        trial, (initial, tf.constant(0), x, kept, g, tf.constant(False)),
        parallel_iterations=ONE_AT_A_TIME)
    return step, x_new, losses, g_new, ok


def two_loop_direction(g, s, y, rho, pairs, history):
    """-H g by the two-loop recursion over the `pairs` newest curvature pairs, newest first;
    `s(i)` and `y(i)` give pair i's rows; H's initial matrix is GAMMA_SCALE s.y / y.y of the
    newest pair times the identity.

    Both loops are tf.while_loops over the pairs held, not Python loops over the history: the
    graph (and its tracing time) stays the same size whatever the history's length.
    """
    def newest_to_oldest(i, q, alphas):
        alpha = rho[i] * tf.reduce_sum(s(i) * q)
        return i + 1, q - alpha * y(i), alphas + alpha * tf.one_hot(i, history)
    _, q, alphas = tf.while_loop(lambda i, *_: i < pairs, newest_to_oldest,
                                 (tf.constant(0), g, tf.zeros([history])),
                                 parallel_iterations=ONE_AT_A_TIME)
    s0, y0 = s(0), y(0)
    gamma = tf.where(pairs > 0, GAMMA_SCALE * tf.reduce_sum(s0 * y0)
                     / (tf.reduce_sum(y0 * y0) + 1e-30), 1.0)

    def oldest_to_newest(i, r):
        i = i - 1
        beta = rho[i] * tf.reduce_sum(y(i) * r)
        return i, r + (alphas[i] - beta) * s(i)
    _, r = tf.while_loop(lambda i, r: i > 0, oldest_to_newest, (pairs, gamma * q),
                         parallel_iterations=ONE_AT_A_TIME)
    return -r
