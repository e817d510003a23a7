import numpy as np
import pytest
import tensorflow as tf

import numerics
from tf_style import losses


def test_gram_by_hand():
    # Two positions with features (1, 2) and (3, 4): F^T F = [[1+9, 2+12], [2+12, 4+16]].
    f = tf.constant([[[[1.0, 2.0], [3.0, 4.0]]]])
    np.testing.assert_allclose(losses.gram_matrix(f).numpy(), [[[10, 14], [14, 20]]])
    np.testing.assert_allclose(losses.position_mean_gram(f).numpy(), [[[5, 7], [7, 10]]])


def test_gram_is_per_image():
    f = tf.random.normal([3, 4, 5, 6])
    g = losses.gram_matrix(f).numpy()
    for i in range(3):
        m = f[i].numpy().reshape(-1, 6)
        np.testing.assert_allclose(g[i], m.T @ m, rtol=1e-5, atol=1e-4)


def test_gram_gradient_is_einsums():
    # gram_matrix has a hand-written gradient; it must equal TensorFlow's for the einsum.
    f = tf.random.normal([2, 5, 7, 6], seed=1)
    weights = tf.random.normal([2, 6, 6], seed=2)  # not symmetric
    gradients = []
    for gram in (losses.gram_matrix, lambda x: tf.einsum('bhwc,bhwd->bcd', x, x)):
        with tf.GradientTape() as tape:
            tape.watch(f)
            loss = tf.reduce_sum(gram(f) * weights)
        gradients.append(tape.gradient(loss, f).numpy())
    assert gradients[0].shape == (2, 5, 7, 6)
    np.testing.assert_allclose(gradients[0], gradients[1], rtol=1e-5, atol=1e-5)


@pytest.mark.kernels
def test_gram_of_bfloat16_features_is_float32_its_gradient_a_bfloat16_product():
    # Mixed precision: G in float32 (G - A cancels); the gradient's matrix product in bfloat16
    # (twice float32's speed on CPUs with bf16 units), within bfloat16's rounding.
    f16 = tf.cast(tf.random.normal([1, 6, 5, 8], seed=3), tf.bfloat16)
    weights = tf.random.normal([1, 8, 8], seed=4)

    @tf.function(autograph=False)
    def gram_and_gradient(f):
        with tf.GradientTape() as tape:
            tape.watch(f)
            gram = losses.gram_matrix(f)
            loss = tf.reduce_sum(gram * weights)
        return gram, tape.gradient(loss, f)

    gram, gradient = gram_and_gradient(f16)
    graph = gram_and_gradient.get_concrete_function(f16).graph
    products = [op.get_attr('T') for op in graph.get_operations()
                if op.type.startswith('BatchMatMul')]
    assert sorted(products, key=str) == sorted([tf.float32, tf.bfloat16], key=str)
    exact = tf.cast(f16, tf.float32).numpy().reshape(-1, 8)
    np.testing.assert_allclose(gram.numpy()[0], exact.T @ exact, rtol=1e-5, atol=1e-4)
    w = weights.numpy()[0]
    expected = (exact @ (w + w.T)).reshape(1, 6, 5, 8)
    numerics.BFLOAT16_PRODUCT.check(tf.cast(gradient, tf.float32), expected)


def test_content_loss_by_hand():
    assert float(losses.content_loss(tf.constant([1.0, 2.0, 3.0]), tf.zeros(3))) == 7.0


def test_style_layer_loss_by_hand():
    g = tf.ones([1, 2, 2])
    assert float(losses.style_layer_loss(g, tf.zeros([1, 2, 2]), 2, 2)) == pytest.approx(4 / 64)


def test_tv_by_hand():
    image = tf.constant([[[[0.0], [1.0]], [[3.0], [5.0]]]])  # rows (0, 1) and (3, 5)
    assert float(losses.total_variation_loss(image)) == 9 + 16 + 1 + 4


def paper_style_loss(features, style_features, weights):
    """Equation 5 written out with numpy, for images of the same size."""
    total = 0.0
    for name, w in weights.items():
        f = features[name].numpy()[0]
        s = style_features[name].numpy()[0]
        n, m = f.shape[-1], f.shape[0] * f.shape[1]
        f, s = f.reshape(m, n).astype(np.float64), s.reshape(m, n).astype(np.float64)
        total += w * ((f.T @ f - s.T @ s) ** 2).sum() / (4 * n ** 2 * m ** 2)
    return total


def test_objective_is_the_papers_formula():
    rng = np.random.default_rng(0)
    shapes = {'a': [1, 6, 5, 3], 'b': [1, 3, 2, 4]}
    feats = {k: tf.constant(rng.random(s), tf.float32) for k, s in shapes.items()}
    style = {k: tf.constant(rng.random(s), tf.float32) for k, s in shapes.items()}
    content = {'b': tf.constant(rng.random(shapes['b']), tf.float32)}
    objective = losses.StyleObjective(
        content, {k: losses.position_mean_gram(v) for k, v in style.items()},
        content_weight=2.0, style_weight=10.0)
    out = objective(feats)
    expected_style = paper_style_loss(feats, style, {'a': 0.5, 'b': 0.5})
    expected_content = 0.5 * ((feats['b'].numpy() - content['b'].numpy()) ** 2).sum()
    assert float(out['style']) == pytest.approx(expected_style, rel=1e-4)
    assert float(out['content']) == pytest.approx(expected_content, rel=1e-5)
    assert float(out['total']) == pytest.approx(2 * expected_content + 10 * expected_style,
                                                rel=1e-4)
    assert float(out['tv']) == 0.0


def test_style_of_another_size_is_compared_per_position():
    # Tiling an image's features twice leaves its per-position Gram, and so the loss, unchanged.
    rng = np.random.default_rng(1)
    f = tf.constant(rng.random([1, 4, 4, 3]), tf.float32)
    tiled = tf.concat([f, f], axis=2)
    objective = losses.StyleObjective({}, {'a': losses.position_mean_gram(tiled)},
                                      content_weight=0.0, style_layer_weights=[1.0])
    assert float(objective({'a': f})['style']) == pytest.approx(0.0, abs=1e-9)


def test_layer_weights_and_tv():
    f = {'a': tf.ones([1, 2, 2, 1])}
    objective = losses.StyleObjective({}, {'a': tf.zeros([1, 1, 1])}, style_weight=1.0,
                                      style_layer_weights=[3.0], tv_weight=2.0)
    image = tf.constant([[[[0.0], [2.0]]]])
    out = objective(f, image)
    # G / M = 1, N = 1: E = 1 / 4; weighted 3 / 4.  TV = 4.
    assert float(out['style']) == pytest.approx(0.75)
    assert float(out['total']) == pytest.approx(0.75 + 2 * 4.0)
