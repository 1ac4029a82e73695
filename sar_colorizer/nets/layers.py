"""Registered serializable layers used by the colorization networks.

Every layer here is registered under the package name ``sar_colorizer`` so that a saved
``.keras`` file reloads with ``keras.saving.load_model(..., safe_mode=True)`` without
``custom_objects`` (importing this module is enough). No ``Lambda`` layers: they do not survive
safe-mode loading.

This module is TensorFlow-only code; it imports keras at module top, so nothing imported by
``sar_colorizer/__init__.py`` or a CLI module at import time may import it.
"""

from __future__ import annotations

import logging
from typing import Any

from sar_colorizer._tf import import_keras, import_tensorflow
from sar_colorizer.errors import InputError
from sar_colorizer.sar.radiometry import FEATURE_DB_MIN
from sar_colorizer.sar.radiometry_tf import relative_to_feature_tf

tf = import_tensorflow()
keras = import_keras()

logger = logging.getLogger(__name__)

RESIZE_METHODS = ("bilinear", "nearest", "bicubic", "area")


@keras.saving.register_keras_serializable(package="sar_colorizer")
class LogIntensity(keras.layers.Layer):
    """Relative SAR intensity in [0, 1] -> dB feature in [0, 1].

    Computes :func:`~sar_colorizer.sar.radiometry_tf.relative_to_feature_tf`, the in-graph twin
    of :func:`sar_colorizer.sar.radiometry.relative_to_feature`, with NaN taken as 0. SAR
    backscatter spans decades of linear power and its speckle is multiplicative; in dB the
    speckle becomes additive and the dynamic range fits a network, so the model takes linear
    relative intensity (what the tiling and normalisation code produce) and takes the logarithm
    in-graph.

    Args:
        db_min: dB value mapped to feature 0 (relative intensity 1.0 = 0 dB maps to 1).
        channels: Only the first ``channels`` input channels are SAR intensity; the rest (the
            0/1 presence flags of a network whose polarisations are optional) pass unchanged.
            None: every channel is SAR intensity.
        **kwargs: Standard layer arguments (``name``, ``dtype``...).
    """

    def __init__(
        self, db_min: float = FEATURE_DB_MIN, channels: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if not db_min < 0:
            raise InputError(f"db_min must be negative (got {db_min})")
        if channels is not None and int(channels) < 1:
            raise InputError(f"channels must be at least 1 (got {channels})")
        self.db_min = float(db_min)
        self.channels = None if channels is None else int(channels)

    def call(self, inputs: Any) -> Any:
        ops = keras.ops
        x = ops.cast(inputs, self.compute_dtype)
        flags = None
        if self.channels is not None:
            x, flags = x[..., : self.channels], x[..., self.channels :]
        # NaN (should not reach the model, but a tile edge might carry one) -> floor -> feature 0.
        x = ops.where(ops.isnan(x), ops.zeros_like(x), x)
        feature = relative_to_feature_tf(x, self.db_min)
        return feature if flags is None else ops.concatenate([feature, flags], axis=-1)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"db_min": self.db_min})
        if self.channels is not None:  # older models' configs stay as they were
            config["channels"] = self.channels
        return config


@keras.saving.register_keras_serializable(package="sar_colorizer")
class ResizeLike(keras.layers.Layer):
    """Resize a (B, h, w, C) tensor to the spatial size of a reference (B, H, W, ...) tensor.

    Called as ``ResizeLike()([image, reference])``. The target size is read at run time with
    ``tf.shape``, so a model built on ``(None, None, C)`` inputs works for every tile size.
    ``keras.layers.UpSampling2D(interpolation="bilinear")`` does not: in Keras 3.15 it fails on
    a shape the model was not traced with
    (see ``docs/DESIGN_NOTES.md``, "Bilinear upsampling that works at every tile size").

    Args:
        method: ``tf.image.resize`` method, one of :data:`RESIZE_METHODS`.
        **kwargs: Standard layer arguments.
    """

    def __init__(self, method: str = "bilinear", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if method not in RESIZE_METHODS:
            raise InputError(
                f"unknown resize method {method!r}; choose one of {', '.join(RESIZE_METHODS)}"
            )
        self.method = method

    def call(self, inputs: Any) -> Any:
        image, reference = inputs
        size = tf.shape(reference)[1:3]
        resized = tf.image.resize(image, size, method=self.method)
        return tf.cast(resized, image.dtype)

    def compute_output_shape(self, input_shape: Any) -> tuple[int | None, ...]:
        image_shape, reference_shape = input_shape
        return (image_shape[0], reference_shape[1], reference_shape[2], image_shape[-1])

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"method": self.method})
        return config


@keras.saving.register_keras_serializable(package="sar_colorizer")
class StopGradient(keras.layers.Layer):
    """Identity in the forward pass; no gradient flows back through it.

    The confidence head of :class:`~sar_colorizer.nets.unet.ColorizationUNet` reads the
    decoder's features through this layer, so that training the head (Gaussian negative
    log-likelihood) never changes the features the AB mean is computed from.
    """

    def call(self, inputs: Any) -> Any:
        return keras.ops.stop_gradient(inputs)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return tuple(input_shape)


@keras.saving.register_keras_serializable(package="sar_colorizer")
class BoundedLogVariance(keras.layers.Layer):
    """Unbounded logits -> log-variance in ``[low, high]``: ``low + (high - low) * sigmoid(x)``.

    A smooth bound keeps ``exp(-log_variance)`` of the Gaussian negative log-likelihood finite
    (and its gradient alive) early in training. The defaults are for normalised AB (AB / 110):
    ``-16`` is a standard deviation of 0.04 CIELAB units, ``2`` one of 300 (wider than the
    whole AB range).

    Args:
        low: Smallest log-variance.
        high: Largest log-variance.
        **kwargs: Standard layer arguments.
    """

    def __init__(self, low: float = -16.0, high: float = 2.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not low < high:
            raise ValueError(f"low must be below high (got {low}, {high})")
        self.low = float(low)
        self.high = float(high)

    def call(self, inputs: Any) -> Any:
        ops = keras.ops
        return self.low + (self.high - self.low) * ops.sigmoid(ops.cast(inputs, self.compute_dtype))

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"low": self.low, "high": self.high})
        return config


@keras.saving.register_keras_serializable(package="sar_colorizer")
class FeatureNovelty(keras.layers.Layer):
    """``[features, log_variance]`` -> the log-variance raised where the features are unfamiliar.

    The confidence head learns how much colour varies where the network has seen such land; it
    cannot know that it has never seen a landscape. This layer adds that second part of the
    uncertainty from the density of the decoder's features under the training data (a Gaussian
    fitted after training, as in deep deterministic uncertainty, Mukhoti et al., CVPR 2023):

    * ``d2 = |(f - mean) @ whitening|^2 / C``: the squared Mahalanobis distance per feature
      dimension of each pixel's ``C`` features (about 1 for training features);
    * ``novelty = max(0, log(d2 / typical))``: 0 for features no farther from the training data
      than its median (``typical``), growing with the log of the distance beyond it;
    * ``log_variance' = log(exp(log_variance) + novelty_weight * novelty)``, on both channels.

    ``mean``, ``whitening`` (the Cholesky factor of the inverse covariance), ``typical`` and
    ``novelty_weight`` are non-trainable weights, saved with the model and set after training
    by :mod:`sar_colorizer.novelty`; built fresh (``novelty_weight`` 0) the layer changes
    nothing.
    :func:`sar_colorizer.novelty.feature_novelty` is its numpy twin.

    Args:
        **kwargs: Standard layer arguments.
    """

    def build(self, input_shape: Any) -> None:
        channels = int(input_shape[0][-1])
        self.mean = self.add_weight(name="mean", shape=(channels,), initializer="zeros",
                                    trainable=False)
        self.whitening = self.add_weight(name="whitening", shape=(channels, channels),
                                         initializer="identity", trainable=False)
        self.typical = self.add_weight(name="typical", shape=(), initializer="ones",
                                       trainable=False)
        self.novelty_weight = self.add_weight(name="weight", shape=(), initializer="zeros",
                                              trainable=False)
        super().build(input_shape)

    def call(self, inputs: Any) -> Any:
        ops = keras.ops
        features, log_variance = inputs
        features = ops.cast(features, "float32")
        log_variance = ops.cast(log_variance, "float32")
        centred = features - self.mean
        whitened = ops.matmul(centred, self.whitening)
        channels = ops.cast(ops.shape(features)[-1], "float32")
        d2 = ops.sum(ops.square(whitened), axis=-1, keepdims=True) / channels
        novelty = ops.maximum(ops.log(ops.maximum(d2, 1e-12) / self.typical), 0.0)
        return ops.log(ops.exp(log_variance) + self.novelty_weight * novelty)

    def compute_output_shape(self, input_shape: Any) -> tuple[int | None, ...]:
        return tuple(input_shape[1])


def _binomial(taps: int) -> list[float]:
    row = [1.0]
    for _ in range(taps - 1):
        row = [a + b for a, b in zip([0.0, *row], [*row, 0.0], strict=True)]
    return row


def blur_kernel(factor: int, mode: str) -> list[float]:
    """The 1-D low-pass filter of :class:`BlurPool2D`, normalised to sum 1.

    ``"average"``: the box of ``factor`` taps (what average pooling applies) convolved with the
    5-tap binomial ``[1, 4, 6, 4, 1]``; ``"max"`` (factor 2): the 5-tap binomial alone, applied
    after a stride-1 2 x 2 max. Either way output pixel ``k`` is centred where a pooling block's
    centre is, ``factor * k + (factor - 1) / 2``.
    """
    binomial = _binomial(5)
    if mode == "max":
        kernel = binomial
    else:
        kernel = [0.0] * (factor + 4)
        for start in range(factor):
            for index, value in enumerate(binomial):
                kernel[start + index] += value
    total = sum(kernel)
    return [value / total for value in kernel]


BLUR_POOL_MODES = ("average", "max")


@keras.saving.register_keras_serializable(package="sar_colorizer")
class BlurPool2D(keras.layers.Layer):
    """Anti-aliased pooling: low-pass filter, then keep every ``factor``-th pixel.

    Plain pooling keeps frequencies above the new Nyquist limit, so its output changes with the
    input's pixel phase modulo ``factor``: shift the image by one pixel and the colour of a
    field changes (Zhang 2019, "Making convolutional networks shift-invariant again"). Here the
    features are blurred first (:func:`blur_kernel`, separable, mirrored at the edges),
    so a shift of the input moves the output by a fraction of a pixel instead of changing it.

    * ``mode="average"`` replaces ``AveragePooling2D(factor)`` (box + binomial filter);
    * ``mode="max"`` (``factor`` 2) replaces ``MaxPooling2D(2)``: a 2 x 2 max with stride 1,
      then the binomial filter with stride 2 (MaxBlurPool).

    Input height and width must be multiples of ``factor``; the output is ``factor`` times
    smaller, aligned with the pooling it replaces.

    Args:
        factor: Subsampling factor (``>= 2``; 2 for ``"max"``).
        mode: One of :data:`BLUR_POOL_MODES`.
        **kwargs: Standard layer arguments.
    """

    def __init__(self, factor: int = 2, mode: str = "average", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if mode not in BLUR_POOL_MODES:
            raise InputError(f"unknown blur pool mode {mode!r}; choose one of {', '.join(BLUR_POOL_MODES)}")
        if int(factor) < 2 or (mode == "max" and int(factor) != 2):
            raise InputError(f"blur pool factor must be >= 2 (2 for max), got {factor}")
        self.factor = int(factor)
        self.mode = mode
        self._kernel = blur_kernel(self.factor, mode)

    def call(self, inputs: Any) -> Any:
        x = tf.cast(inputs, self.compute_dtype)
        if self.mode == "max":
            x = tf.pad(x, [[0, 0], [0, 1], [0, 1], [0, 0]], mode="SYMMETRIC")
            x = tf.nn.max_pool2d(x, 2, 1, "VALID")
        taps = len(self._kernel)
        before = (taps - self.factor) // 2 if self.mode == "average" else taps // 2
        after = taps - self.factor - before if self.mode == "average" else taps // 2 - 1
        x = tf.pad(x, [[0, 0], [before, after], [before, after], [0, 0]], mode="SYMMETRIC")
        channels = tf.shape(x)[-1]
        kernel = tf.constant(self._kernel, dtype=x.dtype)
        rows = tf.tile(tf.reshape(kernel, [taps, 1, 1, 1]), [1, 1, channels, 1])
        cols = tf.tile(tf.reshape(kernel, [1, taps, 1, 1]), [1, 1, channels, 1])
        x = tf.nn.depthwise_conv2d(x, rows, [1, self.factor, 1, 1], "VALID")
        return tf.nn.depthwise_conv2d(x, cols, [1, 1, self.factor, 1], "VALID")

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        def smaller(side: int | None) -> int | None:
            return None if side is None else side // self.factor

        return (input_shape[0], smaller(input_shape[1]), smaller(input_shape[2]), input_shape[3])

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"factor": self.factor, "mode": self.mode})
        return config
