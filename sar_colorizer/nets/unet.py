"""U-Net that predicts the chroma (CIELAB a*, b*) of a SAR image.

The network sees speckle-filtered *relative intensity* (linear power divided by the image's
99th percentile, clipped to [0, 1]) and returns normalised AB (AB / 110) in [-1, 1]. Lightness
does not come from the network: it is derived from the SAR itself at full resolution, so the
network only has to get the slowly varying colour right. That is why it can run at reduced
resolution (``downsample``): halving the resolution quadruples the receptive field per FLOP,
and the measured AB error went *down*
(``docs/DESIGN_NOTES.md``, "Resolution: context beats detail for colour").

This module is TensorFlow-only code and imports keras at module top; CLI modules and
``sar_colorizer/__init__.py`` must import it lazily.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sar_colorizer._tf import import_keras, import_tensorflow
from sar_colorizer.errors import InputError
from sar_colorizer.nets.layers import (
    BlurPool2D,
    BoundedLogVariance,
    FeatureNovelty,
    LogIntensity,
    ResizeLike,
    StopGradient,
)

tf = import_tensorflow()
keras = import_keras()

logger = logging.getLogger(__name__)

DOWNSAMPLE_FACTORS = (1, 2, 4)

#: Output channels of a network without / with the confidence head, as recorded in bundle.json.
AB_OUTPUTS = ("a", "b")
CONFIDENCE_OUTPUTS = ("a", "b", "log_var_a", "log_var_b")


def _filters_at(level: int, base_filters: int, filter_growth: float) -> int:
    return max(1, int(round(base_filters * filter_growth**level)))


@keras.saving.register_keras_serializable(package="sar_colorizer")
class ColorizationUNet(keras.Model):
    """SAR relative intensity (B, H, W, C) -> normalised AB (B, H, W, 2) in [-1, 1].

    With ``confidence_head`` the output is (B, H, W, 4): normalised AB, then the predicted
    log-variance of the normalised a* and b* (a Gaussian around the AB mean;
    :data:`CONFIDENCE_OUTPUTS`). The head is a 3x3 convolution (ReLU; separable when
    ``separable``) with half the first level's filters and a 1x1 convolution on the last
    decoder features, read through :class:`StopGradient`: training it cannot move
    the AB mean. Its output is bounded by :class:`BoundedLogVariance` and resized with AB.

    Layout: :class:`~sar_colorizer.nets.layers.LogIntensity` (dB feature in [0, 1]) ->
    ``AveragePooling2D(downsample)`` -> U-Net with ``depth`` max-pool levels and skip
    connections (two 3x3 convolutions per level, 2x2 transposed convolutions going up) ->
    1x1 convolution with ``tanh`` -> bilinear resize back to the input's height and width.

    The input is ``(None, None, input_channels)``: one model serves every tile size that is a
    multiple of :attr:`tile_multiple` (the tiling code pads to it).

    Args:
        input_channels: Number of input channels: 1 for one polarisation (e.g. VH), 2 for
            VV+VH; with ``presence``, twice the number of polarisations.
        depth: Number of 2x down-samplings inside the U-Net.
        base_filters: Filters of the first level; level ``i`` has
            ``round(base_filters * filter_growth**i)``.
        downsample: Average-pooling factor before the U-Net (1, 2 or 4); the AB output is
            resized back to the input size, bilinearly.
        filter_growth: Factor between the filters of consecutive levels.
        batch_norm: Batch normalisation after each 3x3 convolution (the convolution then has no
            bias).
        dropout: Dropout rate at the bottleneck (0 disables it).
        separable: Depthwise-separable 3x3 convolutions (fewer FLOPs and weights).
        confidence_head: Also predict the log-variance of a* and b* (two more channels).
        novelty: With ``confidence_head``, raise the predicted variance where the decoder's
            features are unlike those of the training data
            (:class:`~sar_colorizer.nets.layers.FeatureNovelty`, fitted after training by
            :mod:`sar_colorizer.novelty`; it changes nothing until fitted).
        antialias: Shift-consistent sampling: every pooling low-pass filters first
            (:class:`~sar_colorizer.nets.layers.BlurPool2D`; max pools become MaxBlurPool), and
            the decoder upsamples bilinearly after a 1x1 convolution instead of with a
            transposed convolution. A shift of the input then moves the colours with it instead
            of changing them with the pixel phase modulo :attr:`tile_multiple`.
        presence: The polarisations are each optional: the input holds ``input_channels / 2``
            SAR channels (one per polarisation, 0 where absent) and then as many 0/1 presence
            channels, which skip the dB transform
            (:class:`~sar_colorizer.nets.layers.LogIntensity` ``channels``).
        name: Model name.

    Raises:
        InputError: An argument is out of range.
    """

    def __init__(
        self,
        input_channels: int = 1,
        depth: int = 4,
        base_filters: int = 16,
        downsample: int = 2,
        filter_growth: float = 2.0,
        batch_norm: bool = True,
        dropout: float = 0.0,
        separable: bool = False,
        confidence_head: bool = False,
        novelty: bool = False,
        antialias: bool = False,
        presence: bool = False,
        name: str = "colorization_unet",
    ) -> None:
        _validate(input_channels, depth, base_filters, downsample, filter_growth, dropout)
        if presence and int(input_channels) % 2:
            raise InputError(
                f"with presence channels input_channels must be even (got {input_channels})"
            )
        inputs = keras.Input(shape=(None, None, input_channels), name="sar_relative_intensity")
        sar_channels = int(input_channels) // 2 if presence else None
        features = LogIntensity(channels=sar_channels, name="log_intensity")(inputs)
        if downsample > 1:
            if antialias:
                features = BlurPool2D(downsample, "average", name="downsample")(features)
            else:
                features = keras.layers.AveragePooling2D(downsample, name="downsample")(features)

        skips = []
        for level in range(depth):
            filters = _filters_at(level, base_filters, filter_growth)
            features = _conv_block(features, filters, f"enc{level}", batch_norm, separable)
            skips.append(features)
            if antialias:
                features = BlurPool2D(2, "max", name=f"enc{level}_pool")(features)
            else:
                features = keras.layers.MaxPooling2D(2, name=f"enc{level}_pool")(features)

        filters = _filters_at(depth, base_filters, filter_growth)
        features = _conv_block(features, filters, "bottleneck", batch_norm, separable)
        if dropout > 0:
            features = keras.layers.Dropout(dropout, name="bottleneck_dropout")(features)

        for level in reversed(range(depth)):
            filters = _filters_at(level, base_filters, filter_growth)
            if antialias:
                # 1x1 then bilinear: the same as bilinear then 1x1, at a quarter of the cost
                features = keras.layers.Conv2D(filters, 1, name=f"dec{level}_up")(features)
                features = ResizeLike("bilinear", name=f"dec{level}_resize")(
                    [features, skips[level]]
                )
            else:
                features = keras.layers.Conv2DTranspose(
                    filters, 2, strides=2, padding="same", name=f"dec{level}_up"
                )(features)
            features = keras.layers.Concatenate(name=f"dec{level}_concat")([features, skips[level]])
            features = _conv_block(features, filters, f"dec{level}", batch_norm, separable)

        ab = keras.layers.Conv2D(2, 1, activation="tanh", name="ab")(features)
        if confidence_head:
            detached = StopGradient(name="variance_detach")(features)
            conv = keras.layers.SeparableConv2D if separable else keras.layers.Conv2D
            hidden = conv(
                max(4, base_filters // 2), 3, padding="same", activation="relu",
                name="variance_hidden",
            )(detached)
            logits = keras.layers.Conv2D(2, 1, name="variance_logits")(hidden)
            log_variance = BoundedLogVariance(name="log_variance")(logits)
            if novelty:
                log_variance = FeatureNovelty(name="feature_novelty")([detached, log_variance])
            ab = keras.layers.Concatenate(name="ab_log_variance")([ab, log_variance])
        if downsample > 1:
            ab = ResizeLike("bilinear", name="ab_full_resolution")([ab, inputs])

        super().__init__(inputs=inputs, outputs=ab, name=name)
        self.input_channels = int(input_channels)
        self.depth = int(depth)
        self.base_filters = int(base_filters)
        self.downsample = int(downsample)
        self.filter_growth = float(filter_growth)
        self.batch_norm = bool(batch_norm)
        self.dropout = float(dropout)
        self.separable = bool(separable)
        self.confidence_head = bool(confidence_head)
        self.novelty = bool(novelty and confidence_head)
        self.antialias = bool(antialias)
        self.presence = bool(presence)

    @property
    def output_names_by_channel(self) -> tuple[str, ...]:
        """What each output channel is (:data:`AB_OUTPUTS` or :data:`CONFIDENCE_OUTPUTS`)."""
        return CONFIDENCE_OUTPUTS if self.confidence_head else AB_OUTPUTS

    @property
    def tile_multiple(self) -> int:
        """Height and width of an input must be multiples of this (``downsample * 2**depth``)."""
        return self.downsample * 2**self.depth

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, JSON-serialisable."""
        return {
            "input_channels": self.input_channels,
            "depth": self.depth,
            "base_filters": self.base_filters,
            "downsample": self.downsample,
            "filter_growth": self.filter_growth,
            "batch_norm": self.batch_norm,
            "dropout": self.dropout,
            "separable": self.separable,
            "confidence_head": self.confidence_head,
            "novelty": self.novelty,
            "antialias": self.antialias,
            **({"presence": True} if self.presence else {}),
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: Any = None) -> ColorizationUNet:
        """Rebuild from :meth:`get_config` output (weights are restored separately)."""
        return cls(**config)


def _validate(
    input_channels: int,
    depth: int,
    base_filters: int,
    downsample: int,
    filter_growth: float,
    dropout: float,
) -> None:
    if int(input_channels) < 1:
        raise InputError(f"input_channels must be >= 1 (got {input_channels})")
    if int(depth) < 1:
        raise InputError(f"depth must be >= 1 (got {depth})")
    if int(base_filters) < 1:
        raise InputError(f"base_filters must be >= 1 (got {base_filters})")
    if downsample not in DOWNSAMPLE_FACTORS:
        raise InputError(
            f"downsample must be one of {', '.join(map(str, DOWNSAMPLE_FACTORS))} (got {downsample})"
        )
    if filter_growth < 1:
        raise InputError(f"filter_growth must be >= 1 (got {filter_growth})")
    if not 0 <= dropout < 1:
        raise InputError(f"dropout must be in [0, 1) (got {dropout})")


def _conv_block(x: Any, filters: int, prefix: str, batch_norm: bool, separable: bool) -> Any:
    """Two (3x3 convolution -> [batch norm] -> ReLU) units."""
    for index in (1, 2):
        conv_name = f"{prefix}_conv{index}"
        if separable:
            x = keras.layers.SeparableConv2D(
                filters, 3, padding="same", use_bias=not batch_norm, name=conv_name
            )(x)
        else:
            x = keras.layers.Conv2D(
                filters, 3, padding="same", use_bias=not batch_norm, name=conv_name
            )(x)
        if batch_norm:
            x = keras.layers.BatchNormalization(name=f"{prefix}_bn{index}")(x)
        x = keras.layers.Activation("relu", name=f"{prefix}_relu{index}")(x)
    return x


def count_flops_per_pixel(model: Any, size: int | Sequence[int] = 256) -> float:
    """Forward-pass FLOPs per input pixel of the model's convolutions, counted analytically.

    A multiply-add counts as 2 FLOPs: a convolution costs ``2 * kh * kw * cin * cout`` per output
    pixel (transposed: per input pixel), a separable one its depthwise plus pointwise parts.
    Biases, normalisation, activations, pooling and resizing are left out (they are a few
    percent of the total). Shapes at ``size`` come from symbolic shape inference; nothing runs.

    Args:
        model: A Keras model with a single image input ``(None, None, C)`` (channels last).
        size: Input tile size, ``int`` or ``(height, width)``; must suit the model
            (a multiple of ``tile_multiple`` for :class:`ColorizationUNet`).

    Returns:
        FLOPs divided by ``height * width``: multiply by a scene's pixel count for its cost.
    """
    height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    convs = [
        layer
        for layer in model.layers
        if isinstance(
            layer,
            keras.layers.Conv2D
            | keras.layers.Conv2DTranspose
            | keras.layers.SeparableConv2D
            | keras.layers.DepthwiseConv2D,
        )
    ]
    if not convs:
        return 0.0
    probe = keras.Model(
        model.inputs[0], [layer.input for layer in convs] + [layer.output for layer in convs]
    )
    channels = model.inputs[0].shape[-1]
    specs = probe.compute_output_spec(keras.KerasTensor((1, height, width, channels)))
    in_shapes = [spec.shape for spec in specs[: len(convs)]]
    out_shapes = [spec.shape for spec in specs[len(convs) :]]

    total = 0.0
    for layer, in_shape, out_shape in zip(convs, in_shapes, out_shapes, strict=True):
        kh, kw = layer.kernel_size
        cin = in_shape[-1]
        if isinstance(layer, keras.layers.Conv2DTranspose):
            total += 2.0 * kh * kw * cin * layer.filters * in_shape[1] * in_shape[2]
        elif isinstance(layer, keras.layers.SeparableConv2D | keras.layers.DepthwiseConv2D):
            multiplier = layer.depth_multiplier
            pixels = out_shape[1] * out_shape[2]
            total += 2.0 * kh * kw * cin * multiplier * pixels
            if isinstance(layer, keras.layers.SeparableConv2D):
                total += 2.0 * cin * multiplier * layer.filters * pixels
        else:
            groups = getattr(layer, "groups", 1)
            total += 2.0 * kh * kw * (cin // groups) * layer.filters * out_shape[1] * out_shape[2]
    return total / (height * width)


def fold_batch_norm(model: ColorizationUNet) -> ColorizationUNet:
    """An inference copy of ``model`` with every batch normalisation folded into its convolution.

    At inference a batch normalisation is a per-channel affine map, ``y = s * x + t`` with
    ``s = gamma / sqrt(moving_variance + epsilon)`` and ``t = beta - moving_mean * s``; scaling
    the output channels of the convolution before it by ``s`` and giving it the bias ``t``
    computes the same numbers without one full pass over the feature maps per layer (the network
    is memory-bound on a CPU). Used by inference only; training keeps the batch normalisation.

    Args:
        model: A :class:`ColorizationUNet` (with or without batch normalisation).

    Returns:
        A new :class:`ColorizationUNet` with ``batch_norm=False`` that predicts the same values
        (to float32 rounding), or ``model`` itself when it has no batch normalisation.
    """
    import numpy as np

    if not model.batch_norm:
        return model
    config = {**model.get_config(), "batch_norm": False}
    folded = ColorizationUNet.from_config(config)
    for layer in folded.layers:
        source = model.get_layer(layer.name)
        if not layer.weights:
            continue
        if not source.name.endswith(("_conv1", "_conv2")):
            layer.set_weights(source.get_weights())
            continue
        norm = model.get_layer(source.name.replace("_conv", "_bn"))
        gamma, beta, mean, variance = norm.get_weights()
        scale = gamma / np.sqrt(variance + norm.epsilon)
        shift = beta - mean * scale
        weights = source.get_weights()  # kernels only: the batch-normalised conv has no bias
        weights[-1] = weights[-1] * scale  # output channels are the last axis of the kernel
        layer.set_weights([*weights, shift.astype(weights[-1].dtype)])
    return folded


def inference_network(model: Any) -> tuple[Any, bool]:
    """``(network, upsample)``: what inference runs of ``model``, for TensorFlow and ONNX alike.

    A :class:`ColorizationUNet` gets its batch normalisations folded into the convolutions
    (:func:`fold_batch_norm`). A network that ends in a bilinear
    :class:`~sar_colorizer.nets.layers.ResizeLike` (AB predicted at reduced resolution) is cut
    before it, and ``upsample`` is True: the runner upsamples with OpenCV (the same half-pixel
    bilinear interpolation, several times faster on a CPU) or guided by the SAR.
    """
    network = fold_batch_norm(model) if isinstance(model, ColorizationUNet) else model
    last = network.layers[-1]
    upsample = isinstance(last, ResizeLike) and last.method == "bilinear"
    if upsample:
        network = keras.Model(network.inputs, last.input[0], name=f"{network.name}_low")
    return network, upsample
