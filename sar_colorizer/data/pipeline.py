"""The ``tf.data`` input pipeline over the chips written by ``sarcolor preprocess``.

Order of operations, and why:

1. shards are read interleaved and parsed in parallel;
2. in the graph, a batch of chips at a time: the speckle filter (``speckle_filter_tf``) over each
   *whole* chip, as inference filters whole scenes (a filter run on a crop would see fewer
   neighbours at its edges), and sRGB -> CIE LAB -> the normalised AB target. Both are
   deterministic, so they run once per chip, before the cache;
3. cache (in memory by default: ``4 * (C + 3)`` bytes per pixel, about 1 GB per 1000 chips of
   256 px with one band) - everything after it is random, so every epoch is augmented afresh;
4. shuffle (seeded, reshuffled every epoch), repeat;
5. per chip: random flips and 90-degree rotations of SAR, target and mask together, then the
   random crop. Filtering before these is equivalent to filtering after them: the filters are
   symmetric under flips and quarter turns, and they saw the whole chip either way. With
   ``phase_jitter`` a chip too small to give that many crop positions is first mirrored at its
   edges (the mirrored pixels carry no loss), so that its land falls at every pixel phase of
   the network's pooling; ``gain_jitter_db`` scales the SAR by a random gain (the reference
   of a scene is never exactly the one of training);
6. batch and prefetch.

Each chip's random draws come from a stateless seed ``(seed, position in the stream)``, so with
``deterministic=True`` two datasets built with the same seed yield bit-identical batches.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sar_colorizer._tf import import_tensorflow
from sar_colorizer.data.stats import STATS_FILE, read_stats
from sar_colorizer.data.tfrecord import list_shards, parse_example
from sar_colorizer.errors import InputError

if TYPE_CHECKING:
    from tensorflow import Tensor
    from tensorflow.data import Dataset

    from sar_colorizer.sar.speckle import SpeckleFilter

    _Chip = tuple[Tensor, Tensor, Tensor]  # sar, valid, rgb
    _Example = tuple[Tensor, Tensor]  # network input, target

logger = logging.getLogger(__name__)

_DEFAULT_SHUFFLE_BUFFER = 1024
_PREPARE_BATCH = 16  # chips filtered and converted together before the cache
_MAX_SHUFFLE_BUFFER = 8192


def resolve_speckle_filter(
    speckle_filter: SpeckleFilter | dict[str, Any] | str | None,
    stats: dict[str, Any] | None = None,
) -> SpeckleFilter:
    """A :class:`~sar_colorizer.sar.speckle.SpeckleFilter` from a spec, dict, name or None.

    None takes the filter recorded in ``stats.json`` (the one the baselines were computed with),
    else the default ``SpeckleFilter()`` (boxcar 5x5).
    """
    from sar_colorizer.sar.speckle import SpeckleFilter

    if isinstance(speckle_filter, SpeckleFilter):
        return speckle_filter
    if isinstance(speckle_filter, dict):
        return SpeckleFilter.from_dict(speckle_filter)
    if isinstance(speckle_filter, str):
        return SpeckleFilter(name=speckle_filter)
    if speckle_filter is None:
        recorded = (stats or {}).get("speckle_filter")
        return SpeckleFilter.from_dict(recorded) if recorded else SpeckleFilter()
    raise InputError(
        f"speckle_filter must be a SpeckleFilter, a dict or a filter name, not {type(speckle_filter).__name__}"
    )


def make_dataset(
    data_dir: str | Path,
    split: str = "train",
    batch_size: int = 16,
    crop_size: int | None = None,
    speckle_filter: SpeckleFilter | dict[str, Any] | str | None = None,
    augment: bool = True,
    shuffle: bool = True,
    deterministic: bool = False,
    seed: int = 0,
    repeat: bool = False,
    cache: bool | str = True,
    shuffle_buffer: int | None = None,
    drop_remainder: bool = False,
    phase_jitter: int = 0,
    gain_jitter_db: float = 0.0,
    polarisations: Sequence[str] | None = None,
    pol_dropout: float = 0.0,
) -> Dataset:
    """Build the training / validation input pipeline.

    Args:
        data_dir: Folder written by ``sarcolor preprocess``.
        split: ``"train"``, ``"val"`` or ``"test"``.
        batch_size: Chips per batch.
        crop_size: Side of the crop taken from each chip (random position when ``augment``, the
            centre otherwise); None keeps whole chips. Must not exceed the chip size.
        speckle_filter: :class:`~sar_colorizer.sar.speckle.SpeckleFilter` (or its dict, or a filter
            name) applied in the graph to the SAR relative intensity; None = the filter recorded
            in ``stats.json`` (default boxcar 5x5). ``"none"`` feeds the unfiltered SAR.
        augment: Random flips, 90-degree rotations and random crop positions.
        shuffle: Shuffle chips (seeded, reshuffled every epoch).
        deterministic: Keep element order fixed through parallel stages, so that equal seeds give
            bit-identical batches (a little slower).
        seed: Seed of the shuffle and of every random draw.
        repeat: Repeat forever (then pass ``steps_per_epoch`` to ``fit``).
        cache: Keep the prepared (filtered, LAB-converted) chips in memory after the first pass
            (``4 * (C + 3)`` bytes per pixel); a path caches to files there instead; False
            recomputes every epoch.
        shuffle_buffer: Shuffle buffer size; default all chips of the split (at most 8192).
        drop_remainder: Drop a last, smaller batch (fixed batch shape).
        phase_jitter: With ``augment``, crops start at at least this many positions along each
            axis (chips are mirrored at their edges where they are too small; no loss there).
        gain_jitter_db: With ``augment``, the SAR is scaled by a gain uniform in
            ``[-gain_jitter_db, gain_jitter_db]`` dB per chip (clipped to [0, 1] again).
        polarisations: The network's polarisations, each optional: ``x`` then holds one SAR
            channel per polarisation (0 where the chips lack it) followed by one 0/1 presence
            channel per polarisation (:func:`polarisation_channels`). None: the chips' bands.
        pol_dropout: With ``augment`` and ``polarisations``, the probability that a chip with
            several polarisations has one of them, drawn at random, hidden (SAR and presence
            0); never all of them.

    Returns:
        A ``tf.data.Dataset`` of ``(x, y)``: ``x`` (B, h, w, C) float32, the speckle-filtered
        relative intensity in [0, 1] (0 at invalid pixels); ``y`` (B, h, w, 3) float32, channels
        0-1 the CIELAB a, b of the optical image divided by ``AB_SCALE`` (in [-1, 1]) and channel
        2 the valid weight (1 valid, 0 nodata; the AB there is 0).

    Raises:
        InputError: No shards of that split, a bad crop size or batch size.
    """
    tf = import_tensorflow()
    data_dir = Path(data_dir)
    files = list_shards(data_dir, split)
    if not files:
        raise InputError(
            f"{data_dir}: no {split}-*.tfrecord shards; give a folder written by 'sarcolor preprocess'"
        )
    if batch_size < 1:
        raise InputError(f"batch size must be >= 1, got {batch_size}")
    stats = read_stats(data_dir) if (data_dir / STATS_FILE).is_file() else {}
    chip_size = stats.get("chip_size")
    channels = len(stats["bands"]) if stats.get("bands") else None
    layout = None
    if polarisations is not None:
        layout = polarisation_channels(stats.get("bands") or [], polarisations, data_dir)
    if crop_size is not None and (crop_size < 1 or (chip_size and crop_size > chip_size)):
        raise InputError(f"crop size {crop_size} must be between 1 and the chip size {chip_size}")
    spec = resolve_speckle_filter(speckle_filter, stats)
    n_chips = (stats.get("n_chips") or {}).get(split)
    if shuffle_buffer is None:
        shuffle_buffer = min(n_chips, _MAX_SHUFFLE_BUFFER) if n_chips else _DEFAULT_SHUFFLE_BUFFER
    autotune = tf.data.AUTOTUNE

    dataset = _read_chips(files, chip_size, channels, deterministic)
    dataset = dataset.batch(_PREPARE_BATCH).map(
        _prepare_chips(spec), num_parallel_calls=autotune, deterministic=deterministic
    )
    dataset = dataset.unbatch()
    if cache:
        dataset = dataset.cache() if cache is True else dataset.cache(str(cache))
    if shuffle:
        dataset = dataset.shuffle(max(1, shuffle_buffer), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    n_pols = len(polarisations) if polarisations is not None else None
    augmentation = _augmentation(
        seed, augment, crop_size, crop_size or chip_size,
        2 * n_pols if n_pols is not None else channels,
        phase_jitter=phase_jitter if augment else 0,
        gain_jitter_db=gain_jitter_db if augment else 0.0,
        layout=layout,
        pol_dropout=pol_dropout if augment else 0.0,
    )
    dataset = dataset.enumerate().map(
        augmentation, num_parallel_calls=autotune, deterministic=deterministic
    )
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    dataset = dataset.prefetch(autotune)
    options = tf.data.Options()
    options.deterministic = deterministic
    return dataset.with_options(options)


def _read_chips(
    files: list[Path], chip_size: int | None, channels: int | None, deterministic: bool
) -> Dataset:
    """``(sar, valid, rgb)`` of every chip, the shards read interleaved and parsed in parallel;
    shapes fixed when ``stats.json`` gives the chip size."""
    tf = import_tensorflow()
    autotune = tf.data.AUTOTUNE
    dataset = tf.data.Dataset.from_tensor_slices([str(path) for path in files])
    dataset = dataset.interleave(
        tf.data.TFRecordDataset,
        cycle_length=min(len(files), 8),
        block_length=1,
        num_parallel_calls=autotune,
        deterministic=deterministic,
    )

    def parse(serialized: Tensor) -> _Chip:
        chip = parse_example(serialized)
        sar, valid, rgb = chip["sar"], chip["valid"], chip["rgb"]
        if chip_size:
            sar = tf.ensure_shape(sar, [chip_size, chip_size, channels])
            valid = tf.ensure_shape(valid, [chip_size, chip_size, 1])
            rgb = tf.ensure_shape(rgb, [chip_size, chip_size, 3])
        return sar, valid, rgb

    return dataset.map(parse, num_parallel_calls=autotune, deterministic=deterministic)


def _prepare_chips(spec: SpeckleFilter) -> Callable[[Tensor, Tensor, Tensor], _Example]:
    """Speckle filter over whole chips and the LAB target, batched (runs once per chip)."""
    tf = import_tensorflow()
    from sar_colorizer.color.constants import AB_SCALE
    from sar_colorizer.color.lab import rgb_to_lab
    from sar_colorizer.sar.speckle_tf import speckle_filter_tf

    def prepare(sar: Tensor, valid: Tensor, rgb: Tensor) -> _Example:
        is_valid = valid > 0
        sar = tf.cast(sar, tf.float32)
        if spec.name != "none":
            # nodata neither spreads into nor is averaged with valid pixels; 0 there afterwards
            sar = speckle_filter_tf(sar, spec, valid=is_valid, fill_value=0.0)
        sar = tf.clip_by_value(tf.where(is_valid, sar, 0.0), 0.0, 1.0)
        weight = tf.cast(is_valid, tf.float32)
        lab = rgb_to_lab(tf.cast(rgb, tf.float32) / 255.0)
        target = tf.concat([lab[..., 1:3] / AB_SCALE * weight, weight], axis=-1)
        return sar, target

    return prepare


def _augmentation(
    seed: int,
    augment: bool,
    crop_size: int | None,
    out_size: int | None,
    channels: int | None,
    *,
    phase_jitter: int = 0,
    gain_jitter_db: float = 0.0,
    layout: list[int | None] | None = None,
    pol_dropout: float = 0.0,
) -> Callable[[Tensor, _Example], _Example]:
    """Per chip, from a stateless seed ``(seed, position in the stream)``: random flips and
    quarter turns of SAR, target and mask together (with ``augment``), mirrored margins for
    ``phase_jitter``, the crop, then the gain and the polarisation dropout. With a
    polarisation ``layout`` the chip's bands are first spread to the network's polarisations
    with presence flags (:func:`_with_presence`; after the cache and the shuffle buffer, which
    then hold the chips' own bands); the gain leaves the flags alone."""
    tf = import_tensorflow()
    spread = _with_presence(layout) if layout is not None else None
    presence = len(layout) if layout is not None else None

    def augmented(index: Tensor, element: _Example) -> _Example:
        sar, target = element
        if spread is not None:
            sar = spread(sar)
        stacked = tf.concat([sar, target], axis=-1)
        seeds = tf.random.experimental.stateless_split(
            tf.stack([tf.constant(seed, tf.int64), index]), num=5
        )
        if augment:
            stacked = tf.image.stateless_random_flip_left_right(stacked, seeds[0])
            stacked = tf.image.stateless_random_flip_up_down(stacked, seeds[1])
            quarter_turns = tf.random.stateless_uniform([], seeds[2], 0, 4, dtype=tf.int32)
            stacked = tf.image.rot90(stacked, quarter_turns)
        if crop_size is not None:
            if phase_jitter > 1:
                stacked = _mirror_margins(stacked, crop_size, phase_jitter)
            stacked = _crop(stacked, crop_size, seeds[3], augment)
        sar, target = stacked[..., :-3], stacked[..., -3:]
        flags = None
        if presence is not None:
            sar, flags = sar[..., :presence], sar[..., presence:]
        if gain_jitter_db > 0:
            gain_db = tf.random.stateless_uniform([], seeds[4], -gain_jitter_db, gain_jitter_db)
            sar = tf.clip_by_value(sar * tf.pow(10.0, gain_db / 10.0), 0.0, 1.0)
        if flags is not None:
            if pol_dropout > 0:
                keep = _dropout_keep(flags[0, 0], pol_dropout, seeds[4])
                sar, flags = sar * keep, flags * keep
            sar = tf.concat([sar, flags], axis=-1)
        if out_size:
            # rot90 and tensor-offset crops lose the static shape; Keras likes it known.
            sar = tf.ensure_shape(sar, [out_size, out_size, channels])
            target = tf.ensure_shape(target, [out_size, out_size, 3])
        return sar, target

    return augmented


def polarisation_channels(
    bands: Sequence[str], polarisations: Sequence[str], where: Path | str = "the chips"
) -> list[int | None]:
    """For each of the network's ``polarisations``, the chip band that holds it (None: the
    chips lack it), matched by the polarisation in the chips' band names.

    >>> polarisation_channels(["VV", "VH"], ["VH", "VV"]), polarisation_channels(["VH"], ["VH", "VV"])
    ([1, 0], [0, None])

    Raises:
        InputError: A chip band names no polarisation or one the network does not take.
    """
    from sar_colorizer.sar.polarisation import polarisation

    found = [polarisation(name) for name in bands]
    unused = [name for name, pol in zip(bands, found, strict=True) if pol not in polarisations]
    if unused or not bands:
        raise InputError(
            f"{where}: band(s) {', '.join(unused) or '(none recorded)'} are none of the "
            f"polarisations {', '.join(polarisations)}; preprocess with --bands or --band-names "
            "naming them"
        )
    return [found.index(pol) if pol in found else None for pol in polarisations]


def _with_presence(layout: list[int | None]) -> Callable[[Tensor], Tensor]:
    """A chip's SAR bands -> one channel per polarisation (0 where absent), then one 0/1
    presence channel per polarisation."""
    tf = import_tensorflow()

    def spread(sar: Tensor) -> Tensor:
        zeros = tf.zeros_like(sar[..., :1])
        channels = [sar[..., i : i + 1] if i is not None else zeros for i in layout]
        flags = [zeros + (1.0 if i is not None else 0.0) for i in layout]
        return tf.concat(channels + flags, axis=-1)

    return spread


def _dropout_keep(present: Tensor, rate: float, seed: Tensor) -> Tensor:
    """``(n,)`` 0/1: ``present`` with, at probability ``rate`` and when more than one is
    present, one present polarisation (drawn uniformly) set to 0."""
    tf = import_tensorflow()
    drop_seed, pick_seed = tf.unstack(tf.random.experimental.stateless_split(
        tf.random.experimental.stateless_fold_in(seed, 1), num=2))
    several = tf.reduce_sum(present) > 1.5
    drop = tf.logical_and(several, tf.random.stateless_uniform([], drop_seed) < rate)
    # one of the present ones, uniformly: present ones score in [2, 3), absent ones in [0, 1)
    scores = tf.random.stateless_uniform(tf.shape(present), pick_seed) + present * 2.0
    hidden = tf.one_hot(tf.argmax(scores), tf.shape(present)[0], dtype=present.dtype)
    return present * (1.0 - tf.cast(drop, present.dtype) * hidden)


def _mirror_margins(stacked: Tensor, crop_size: int, phase_jitter: int) -> Tensor:
    """Mirror a ``(H, W, C + 3)`` chip at its edges so that a ``crop_size`` crop has at least
    ``phase_jitter`` positions per axis; the target (last 3 channels: a, b, weight) is 0 there."""
    tf = import_tensorflow()
    height, width = tf.shape(stacked)[0], tf.shape(stacked)[1]
    pad_h = tf.maximum(0, phase_jitter - 1 - (height - crop_size))
    pad_w = tf.maximum(0, phase_jitter - 1 - (width - crop_size))
    paddings = [[pad_h // 2, pad_h - pad_h // 2], [pad_w // 2, pad_w - pad_w // 2], [0, 0]]
    mirrored = tf.pad(stacked, paddings, mode="SYMMETRIC")
    inside = tf.pad(tf.ones([height, width, 1], stacked.dtype), paddings)
    sar, target = mirrored[..., :-3], mirrored[..., -3:]
    return tf.concat([sar, target * inside], axis=-1)


def _crop(image: Tensor, crop_size: int, crop_seed: Tensor, at_random: bool) -> Tensor:
    """A ``crop_size`` square of ``image``: at a random position, else the centre."""
    tf = import_tensorflow()
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    if at_random:
        row_seed, col_seed = tf.unstack(tf.random.experimental.stateless_split(crop_seed, num=2))
        top = tf.random.stateless_uniform([], row_seed, 0, height - crop_size + 1, dtype=tf.int32)
        left = tf.random.stateless_uniform([], col_seed, 0, width - crop_size + 1, dtype=tf.int32)
    else:
        top = (height - crop_size) // 2
        left = (width - crop_size) // 2
    return image[top : top + crop_size, left : left + crop_size]
