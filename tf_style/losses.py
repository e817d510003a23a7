"""The paper's objective: content loss, Gram-matrix style loss, and an optional TV term.

Notation as in Gatys et al. (2016), section 2: a layer with N_l filters whose feature maps have
M_l = height x width positions holds F^l in R^{N_l x M_l}; its Gram matrix is G^l = F^l F^l^T.
"""

import copy
from typing import Dict, Mapping, Optional, Sequence

import tensorflow as tf


def gram_matrix(features):
    """G = F^T F per image: [N, H, W, C] -> [N, C, C], unnormalised as in the paper, in float32
    whatever the features' precision.

    Two matrix products per evaluation instead of the three (and the transposes) that
    differentiating `tf.einsum('bhwc,bhwd->bcd', F, F)` makes: its gradient is
    dF = F (dG + dG^T), one product: well over twice as fast for VGG's style layers.
    """
    shape = tf.shape(features)

    @tf.custom_gradient
    def gram(f):
        f32 = tf.cast(f, tf.float32)

        def gradient(dg):
            # In the features' precision: under mixed precision the product runs in bfloat16,
            # whose rounding of dG + dG^T is relative (it is summed in float32 first) and no
            # coarser than the network's own gradient below this layer.
            return tf.matmul(f, tf.cast(dg + tf.linalg.matrix_transpose(dg), f.dtype))
        return tf.matmul(f32, f32, transpose_a=True), gradient

    return gram(tf.reshape(features, [shape[0], -1, shape[3]]))


def content_loss(features, target):
    """Equation 1: 1/2 sum (F - P)^2."""
    return 0.5 * tf.reduce_sum(tf.square(tf.cast(features, tf.float32) - target))


def style_layer_loss(gram, target_gram, num_filters, num_positions):
    """Equation 4: E_l = 1 / (4 N_l^2 M_l^2) sum (G - A)^2, in the Grams' precision."""
    n = tf.cast(num_filters, gram.dtype)
    m = tf.cast(num_positions, gram.dtype)
    return tf.reduce_sum(tf.square(gram - target_gram)) / (4.0 * n * n * m * m)


def position_mean_gram(features):
    """G / M: the Gram matrix divided by the number of positions, [N, C, C].

    The paper compares Grams of equally sized images. When the style image has another size
    (a different aspect ratio, or style_scale), its Gram A' is summed over M' positions, not M;
    we compare A = A' M / M' instead, which is the paper's loss when M = M'. Since
    1/(4 N^2 M^2) sum (G - A' M / M')^2 = 1/(4 N^2) sum (G / M - A' / M')^2, targets are stored
    as A' / M' and the loss is evaluated in that form.
    """
    shape = tf.shape(features)
    return gram_matrix(features) / tf.cast(shape[1] * shape[2], tf.float32)


def guided_gram(features, mask):
    """The Gram matrix of a masked region per unit of mask, [N, C, C] (Gatys et al. 2017).

    Features are weighted by the mask (resized to the layer, [N, H, W, 1]) and the Gram divided
    by the sum of the squared weights: a mask of ones gives `position_mean_gram` exactly.
    """
    features = tf.cast(features, tf.float32) * mask
    return gram_matrix(features) / tf.reduce_sum(tf.square(mask))


def total_variation_loss(image, window=None):
    """Sum of squared differences of neighbouring pixels (not in the paper; smooths noise).

    `window` [y0, y1, x0, x1]: only the pairs whose first pixel lies in it (a tile's interior:
    the pairs of the tiles' interiors partition the image's pairs)."""
    if window is None:
        dy = image[:, 1:, :, :] - image[:, :-1, :, :]
        dx = image[:, :, 1:, :] - image[:, :, :-1, :]
        return tf.reduce_sum(tf.square(dy)) + tf.reduce_sum(tf.square(dx))
    y0, y1, x0, x1 = window[0], window[1], window[2], window[3]
    shape = tf.shape(image)
    last_y, last_x = tf.minimum(y1, shape[1] - 1), tf.minimum(x1, shape[2] - 1)
    dy = image[:, y0 + 1:last_y + 1, x0:x1] - image[:, y0:last_y, x0:x1]
    dx = image[:, y0:y1, x0 + 1:last_x + 1] - image[:, y0:y1, x0:last_x]
    return tf.reduce_sum(tf.square(dy)) + tf.reduce_sum(tf.square(dx))


def temporal_loss(image, warped, mask):
    """Ruder, Dosovitskiy & Brox (2016), eq. 3: 1/D sum c (x - w)^2, D = H x W x 3; `warped` is
    the previous stylized frame warped by the optical flow, `mask` (c) is 0 where the flow is
    unreliable."""
    return tf.reduce_sum(mask * tf.square(image - warped)) / tf.cast(tf.size(image), tf.float32)


class StyleObjective:
    """alpha * L_content + beta * L_style (+ tv_weight * L_tv), for fixed targets.

    Built once per run from the content image's features P^l and the style image's Gram matrices
    per position A^l / M^l (see `position_mean_gram`); calling it on the generated image's
    features returns each term and the total.

    Spatial control: with `style_guides`, `style_targets` is a list of such {layer: target}, one
    per region, and `style_guides` the matching list of {layer: mask [1, h, w, 1]}. Each region
    adds the layer loss between its guided Gram (`guided_gram`) and its target; a region whose
    mask is empty at a layer adds nothing there.
    """

    # The keys of what a call returns.
    TERMS = ('content', 'style', 'tv', 'temporal', 'total')

    def __init__(self, content_targets: Mapping[str, tf.Tensor], style_targets, *,
                 style_guides: Optional[Sequence[Mapping[str, tf.Tensor]]] = None,
                 content_weight: float = 1.0, style_weight: float = 1e3, tv_weight: float = 0.0,
                 content_layer_weights: Optional[Sequence[float]] = None,
                 style_layer_weights: Optional[Sequence[float]] = None,
                 temporal_target=None, temporal_mask=None, temporal_weight: float = 0.0):
        self.content_targets = {k: tf.cast(v, tf.float32) for k, v in content_targets.items()}
        regions = style_targets if style_guides is not None else [style_targets]
        self.regions = []
        for i, targets in enumerate(regions):
            guides = style_guides[i] if style_guides is not None else {}
            self.regions.append([
                (name, tf.cast(target, tf.float32), guides.get(name)) for name, target in
                targets.items() if name not in guides or float(tf.reduce_sum(guides[name])) > 0])
        style_layers = list(regions[0]) if regions else []
        self.content_weight = float(content_weight)
        self.style_weight = float(style_weight)
        self.tv_weight = float(tv_weight)
        n_content, n_style = len(self.content_targets), len(style_layers)
        self.content_layer_weights = dict(zip(
            self.content_targets, content_layer_weights or [1.0] * n_content))
        # The paper's w_l = 1 / (number of active layers).
        self.style_layer_weights = dict(zip(
            style_layers, style_layer_weights or [1.0 / max(n_style, 1)] * n_style))
        self.temporal_weight = float(temporal_weight) if temporal_target is not None else 0.0
        if self.temporal_weight:
            self.temporal_target = tf.constant(temporal_target, tf.float32)[None]
            mask = tf.ones(temporal_target.shape[:2]) if temporal_mask is None else temporal_mask
            self.temporal_mask = tf.constant(mask, tf.float32)[None, :, :, None]

    @property
    def layers(self):
        return tuple(dict.fromkeys(list(self.content_targets) + list(self.style_layer_weights)))

    def tensors(self):
        """The targets (and masks) as one nested structure: what differs between two runs of
        the same settings. A compiled step that takes them as arguments serves both runs."""
        return {'content': dict(self.content_targets), 'regions': self.regions,
                'temporal': ((self.temporal_target, self.temporal_mask) if self.temporal_weight
                             else ())}

    def with_tensors(self, tensors) -> 'StyleObjective':
        """This objective (its weights and terms) with the targets `tensors` (as `tensors()`
        gives them, or the arguments of a compiled step they were passed to)."""
        view = copy.copy(self)
        view.content_targets = tensors['content']
        view.regions = [[tuple(layer) for layer in region] for region in tensors['regions']]
        if self.temporal_weight:
            view.temporal_target, view.temporal_mask = tensors['temporal']
        return view

    def settings(self) -> tuple:
        """What a compiled step bakes in: the weights (two objectives with the same settings
        and target shapes can share one step)."""
        return (self.content_weight, self.style_weight, self.tv_weight, self.temporal_weight,
                tuple(self.content_layer_weights.items()),
                tuple(self.style_layer_weights.items()))

    def __call__(self, features: Mapping[str, tf.Tensor], image=None) -> Dict[str, tf.Tensor]:
        zero = tf.constant(0.0, tf.float32)
        grams = [position_mean_gram(features[name]) if mask is None else
                 guided_gram(features[name], mask) for name, _, mask in self.style_terms()]
        tv = total_variation_loss(image) if (self.tv_weight and image is not None) else zero
        temporal = (self.temporal_term(image) if (self.temporal_weight and image is not None)
                    else zero)
        return self.weighted(self.content_term(features), self.style_term(grams), tv, temporal)

    # Each term once, for the whole image here and for its tiles in tiling.Tiled.

    def content_term(self, features, targets=None):
        """Sum over content layers of their weight times equation 1; `targets`: the content
        targets in order (default: this objective's; a tile passes the parts it owns)."""
        targets = self.content_targets.values() if targets is None else targets
        content = tf.constant(0.0, tf.float32)
        for name, target in zip(self.content_targets, targets):
            content += self.content_layer_weights[name] * content_loss(features[name], target)
        return content

    def style_terms(self):
        """(layer, target, mask or None) of every style term: each layer of each region."""
        return [term for region in self.regions for term in region]

    def style_term(self, grams, dtype=tf.float32):
        """Sum over style terms of their weight times equation 4, from the whole image's Grams
        per unit (as `position_mean_gram` and `guided_gram` give them), one per term of
        `style_terms()`, in their precision (`dtype`)."""
        style = tf.constant(0.0, dtype)
        for (name, target, _), gram in zip(self.style_terms(), grams):
            # == style_layer_loss(G, A' M / M', N, M); see position_mean_gram.
            style += self.style_layer_weights[name] * style_layer_loss(
                gram, tf.cast(target, dtype), gram.shape[-1], 1)
        return style

    def temporal_term(self, image):
        return temporal_loss(image, self.temporal_target, self.temporal_mask)

    def weighted(self, content, style, tv, temporal) -> Dict[str, tf.Tensor]:
        """The terms and their total: alpha content + beta style + tv_weight tv (+ the temporal
        term's weight times it)."""
        total = self.content_weight * content + self.style_weight * style + self.tv_weight * tv
        if self.temporal_weight:
            total += self.temporal_weight * temporal
        return {'content': content, 'style': style, 'tv': tv, 'temporal': temporal,
                'total': total}
