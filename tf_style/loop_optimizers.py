"""L-BFGS and Adam as one tf.while_loop each, their state in loop variables: for a graph that
takes images of any size (an exported stylizer), where lbfgs.py's fixed-size tf.Variables cannot
hold the state.

`lbfgs(value_and_gradient, x0, iterations)` is lbfgs.LBFGS's algorithm, step for step: the
two-loop recursion over the newest `history` curvature pairs, a trial step of `learning_rate`
along the quasi-Newton direction projected onto the box `bounds`, halved until the Armijo
condition holds with a strict decrease; without curvature pairs, steepest descent that first
moves the most-changed value by lbfgs.FIRST_STEP and grows while accepted; a line search that
finds no decrease from steepest descent ends the loop. `adam` is Keras' Adam with the
optimisation's projection onto the box and its halving of the step after a non-finite loss.

`value_and_gradient(x)` takes and returns flat tensors: ({term: scalar}, gradient [n]), where
the term 'total' is the objective.
"""

import tensorflow as tf

from .lbfgs import FIRST_STEP, MAX_STEEPEST_STEP, line_search, two_loop_direction

# Adam: consecutive non-finite losses or gradients (each skipped, halving the step) that end it.
MAX_FAULTS = 8


def lbfgs(value_and_gradient, x0, iterations, *, history: int = 10, learning_rate: float = 1.0,
          bounds=(0.0, 255.0)):
    """Minimises from `x0` ([n]) for at most `iterations`; returns (x, {term: loss at x})."""
    losses, gradient = value_and_gradient(x0)
    n = tf.size(x0)
    state = dict(
        iteration=tf.constant(0), x=x0, losses=losses, gradient=gradient,
        # Newest pair first: s_k = x_{k+1} - x_k, y_k = g_{k+1} - g_k, rho_k = 1 / (y_k . s_k).
        s=tf.zeros([history, n]), y=tf.zeros([history, n]), rho=tf.zeros([history]),
        pairs=tf.constant(0), steepest_step=tf.constant(FIRST_STEP),
        converged=tf.constant(False))

    def running(state):
        return tf.logical_and(state['iteration'] < iterations,
                              tf.logical_not(state['converged']))

    def iterate(state):
        state = _lbfgs_iteration(value_and_gradient, state, history, learning_rate, bounds)
        return {**state, 'iteration': state['iteration'] + 1}

    state = tf.while_loop(running, lambda state: (iterate(state),), (state,))[0]
    return state['x'], state['losses']


def _lbfgs_iteration(value_and_gradient, state, history, learning_rate, bounds):
    x, g = state['x'], state['gradient']
    f = state['losses']['total']
    direction = _direction(g, state['s'], state['y'], state['rho'], state['pairs'], history)
    # Not a descent direction (stale curvature): forget it and go downhill.
    descent = tf.reduce_sum(direction * g) < 0.0
    pairs = tf.where(descent, state['pairs'], 0)
    direction = tf.where(descent, direction, -g)
    steepest = pairs == 0
    g_max = tf.reduce_max(tf.abs(g)) + 1e-30
    initial = tf.where(steepest, state['steepest_step'] / g_max, learning_rate)

    step, x_new, losses, g_new, ok = line_search(value_and_gradient, x, f, g, direction,
                                                 initial, bounds, state['losses'])

    def accept():
        # Steepest descent until a curvature pair is kept: grow the step while it works.
        steepest_step = tf.where(steepest, tf.minimum(2.0 * step * g_max, MAX_STEEPEST_STEP),
                                 state['steepest_step'])
        s, y, rho, kept = _remember(state['s'], state['y'], state['rho'], pairs,
                                    x_new - x, g_new - g, history)
        return {**state, 'x': x_new, 'losses': losses, 'gradient': g_new, 's': s, 'y': y,
                'rho': rho, 'pairs': kept, 'steepest_step': steepest_step}

    def give_up():
        # No decrease even with a tiny step: restart from steepest descent, or stop if that was
        # steepest descent already. x stays where it was.
        return {**state, 'pairs': tf.constant(0), 'converged': steepest}
    return tf.cond(ok, accept, give_up)


def _remember(s_all, y_all, rho, pairs, s, y, history):
    """The pairs with (s, y) pushed in front, if its curvature y.s is positive."""
    ys = tf.reduce_sum(y * s)

    def push():
        return (tf.concat([s[None], s_all[:-1]], axis=0),
                tf.concat([y[None], y_all[:-1]], axis=0),
                tf.concat([[1.0 / ys], rho[:-1]], axis=0), tf.minimum(pairs + 1, history))
    return tf.cond(ys > 1e-10, push, lambda: (s_all, y_all, rho, pairs))


def _direction(g, s, y, rho, pairs, history):
    """-H g over the `pairs` newest pairs (rows of s and y)."""
    return two_loop_direction(g, lambda i: s[i], lambda i: y[i], rho, pairs, history)


def adam(value_and_gradient, x0, iterations, *, learning_rate: float = 10.0,
         beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-1,
         bounds=(0.0, 255.0)):
    """Keras' Adam from `x0` for `iterations` evaluations, projected onto `bounds`; an update
    whose loss or gradient is not finite is skipped and the step halved, and MAX_FAULTS of them
    in a row end it. Returns x (the losses at x are for the caller to evaluate: Adam's are of
    the point before each update)."""
    zeros = tf.zeros_like(x0)
    state = dict(iteration=tf.constant(0), updates=tf.constant(0.0), x=x0, m=zeros, v=zeros,
                 learning_rate=tf.constant(learning_rate), faults=tf.constant(0))

    def running(state):
        return tf.logical_and(state['iteration'] < iterations, state['faults'] < MAX_FAULTS)

    def iterate(state):
        losses, g = value_and_gradient(state['x'])
        finite = tf.logical_and(tf.math.is_finite(losses['total']),
                                tf.reduce_all(tf.math.is_finite(g)))

        def update():
            t = state['updates'] + 1.0
            m = state['m'] + (g - state['m']) * (1.0 - beta_1)
            v = state['v'] + (tf.square(g) - state['v']) * (1.0 - beta_2)
            alpha = state['learning_rate'] * tf.sqrt(1.0 - beta_2 ** t) / (1.0 - beta_1 ** t)
            x = tf.clip_by_value(state['x'] - alpha * m / (tf.sqrt(v) + epsilon), *bounds)
            return {**state, 'updates': t, 'x': x, 'm': m, 'v': v, 'faults': tf.constant(0)}

        def skip():
            return {**state, 'learning_rate': state['learning_rate'] * 0.5,
                    'faults': state['faults'] + 1}
        state = tf.cond(finite, update, skip)
        return {**state, 'iteration': state['iteration'] + 1}

    return tf.while_loop(running, lambda state: (iterate(state),), (state,))[0]['x']
