"""Model bundles: a trained network together with everything needed to feed it correctly.

A bundle is a directory holding

* ``model.keras``: the Keras model (custom layers registered under ``sar_colorizer``, so it
  loads with ``safe_mode=True``), and
* ``bundle.json``: the conventions the model was trained with, which ``predict`` and ``eval``
  must reproduce on new input: SAR bands (polarisations), radiometric normalisation, speckle
  filter, tile multiple, the tile size it was trained on, the tone curve for L, baselines and a
  training summary::

    {"format_version": 1, "package_version": "0.1.0", "bands": ["VH"], "input_channels": 1,
     "normalization": {"method": "percentile", "percentile": 99.0, "db_min": -25.0, "db_max": 5.0},
     "speckle_filter": {"name": "boxcar", "window": 5, "looks": 1.0},
     "tile_multiple": 32, "tile_size": 512, "optical_convention": "dos", "model_config": {...},
     "tone": {"method": "matched", "l_quantiles": [101 floats]},
     "outputs": {"channels": ["a", "b", "log_var_a", "log_var_b"], ...},
     "baselines": {...}, "training": {...}}

``outputs`` says what each channel of the network's output is: normalised a*, b* (AB / 110),
then, for a model with a confidence head, the log-variance of normalised a* and b*. Bundles
without it (written before the confidence head, such as older shipped models) output a*, b*.

Other files in the directory (learning curves, logs) are allowed and ignored. The shipped
model lives in ``sar_colorizer/weights/default/`` and is loaded with ``load_bundle("default")``.

Importing this module does not import TensorFlow; :func:`load_bundle` and :func:`save_bundle`
do.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import threading
import zipfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from sar_colorizer.errors import InputError, ModelMismatchError, OutputExistsError, SarColorError
from sar_colorizer.io.atomic import atomic_folder, publish
from sar_colorizer.sar.polarisation import polarisation
from sar_colorizer.version import __version__

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    from keras import Model

    from sar_colorizer.onnx_network import OnnxNetwork
    from sar_colorizer.sar.radiometry import Normalization
    from sar_colorizer.sar.speckle import SpeckleFilter

logger = logging.getLogger(__name__)

#: Newest bundle layout this version reads and the one it writes.
FORMAT_VERSION = 1
MODEL_FILE = "model.keras"
METADATA_FILE = "bundle.json"
DEFAULT_BUNDLE = "default"
DEFAULT_TILE_SIZE = 512  # tile size for bundles that do not record the one they were trained on
AB_CHANNELS = ("a", "b")
VARIANCE_CHANNELS = ("log_var_a", "log_var_b")
DEFAULT_PIXEL_SIZE = 10.0  # metres; training pixel size for bundles that do not record one


def portable_path(path: str | os.PathLike[str], base: str | os.PathLike[str] | None = None) -> str:
    """A path as bundle.json records it: relative to ``base`` when inside it, else the name.

    A bundle travels (the shipped one is installed on every user's machine): it records where
    its training data was in terms that mean something elsewhere, never an absolute path of the
    machine that trained it.
    """
    path = Path(path)
    if base is not None:
        try:
            return path.resolve().relative_to(Path(base).resolve()).as_posix()
        except ValueError:
            pass
    return path.resolve().name if path.name in ("", ".", "..") else path.name


class Bundle:
    """A model and its metadata (the parsed ``bundle.json``).

    Args:
        model: The Keras model: relative SAR intensity (B, H, W, C) -> normalised AB
            (B, H, W, 2); None for a bundle loaded from ``path`` that runs on ONNX Runtime,
            whose Keras model is loaded when :attr:`model` is first read.
        metadata: The bundle.json content.
        path: The bundle directory it was loaded from (None for an in-memory bundle).
        network: The bundle's ONNX graph in an ONNX Runtime session
            (:class:`~sar_colorizer.onnx_network.OnnxNetwork`), which inference runs instead of
            the Keras model; None: inference runs the Keras model on TensorFlow.
    """

    def __init__(
        self,
        model: Model | None = None,
        metadata: dict[str, Any] | None = None,
        path: Path | None = None,
        network: OnnxNetwork | None = None,
    ) -> None:
        self._model = model
        self.metadata: dict[str, Any] = metadata if metadata is not None else {}
        self.path = path
        self.network = network

    def __repr__(self) -> str:
        runtime = "onnx" if self.network is not None else "keras"
        return f"Bundle(path={self.path!r}, bands={self.bands}, runtime={runtime})"

    @property
    def model(self) -> Model:
        """The Keras model; loaded (importing TensorFlow) on first use for a bundle that runs on
        ONNX Runtime.

        Raises:
            InputError: The model file does not load.
        """
        if self._model is None and self.path is not None:
            self._model = _load_keras_model(self.path, self.metadata)
        return self._model

    @model.setter
    def model(self, model: Model) -> None:
        self._model = model
        self.network = None  # a graph of the model this replaces would be out of date

    @property
    def format_version(self) -> int:
        """Layout version of the bundle."""
        return int(self.metadata.get("format_version", FORMAT_VERSION))

    @property
    def input_channels(self) -> int:
        """Number of SAR bands the model takes."""
        if "input_channels" in self.metadata:
            return int(self.metadata["input_channels"])
        if self._model is None and self.network is not None and self.network.input_channels:
            return self.network.input_channels
        return int(self.model.inputs[0].shape[-1])

    @property
    def bands(self) -> list[str]:
        """Band (polarisation) names in model input order, e.g. ``["VH"]`` or ``["VV", "VH"]``."""
        bands = self.metadata.get("bands")
        if bands:
            return [str(band) for band in bands]
        return [f"band{index + 1}" for index in range(self.input_channels)]

    @property
    def optional_bands(self) -> bool:
        """The model takes any of its :attr:`bands` (polarisations), each optional: its input
        holds one SAR channel per band (0 where the input lacks it) and then one 0/1 presence
        channel per band (bundle.json ``optional_bands``; older bundles need every band)."""
        return bool(self.metadata.get("optional_bands"))

    def input_layout(
        self, n_channels: int, band_names: Sequence[str | None] | None = None
    ) -> tuple[tuple[int, ...], tuple[bool, ...] | None]:
        """Which of an input's bands feed the model, checked against what it was trained on.

        A model of :attr:`optional_bands` takes every band of the input that holds one of its
        polarisations (:func:`~sar_colorizer.sar.polarisation.input_layout`; one band that
        names none is taken as its first, with a warning); other models need their bands
        (:meth:`check_input`).

        Args:
            n_channels: Number of bands of the input.
            band_names: The input's band names (descriptions or file suffixes), if known.

        Returns:
            ``(positions, present)``: the input bands to use, in the model's order, and for a
            model of optional bands whether each of its bands is present (else None).

        Raises:
            ModelMismatchError: As :meth:`check_input`, or (optional bands) the input holds
                none of the model's polarisations.
        """
        if not self.optional_bands:
            self.check_input(n_channels, band_names)
            return tuple(range(n_channels)), None
        from sar_colorizer.sar.polarisation import input_layout

        names = list(band_names) if band_names is not None else [None] * n_channels
        if n_channels > 1 and not any(names):
            if n_channels == len(self.bands):  # unnamed bands in the model's order
                return tuple(range(n_channels)), (True,) * n_channels
            raise ModelMismatchError(
                f"model takes {', '.join(self.bands)}; input has {n_channels} unnamed bands: "
                "choose them with --bands (names or 1-based numbers)"
            )
        positions, present = input_layout(self.bands, names)
        if len(names) == 1 and polarisation(names[0]) is None:
            logger.warning(
                "input band %s names no polarisation: taken as %s; if it is %s, say so in its "
                "band description or the file name (e.g. scene_%s.tif), or choose a named band "
                "with --bands",
                names[0] or 1, self.bands[0], " or ".join(self.bands[1:]) or "another",
                (self.bands[1:] or self.bands)[0],
            )
        return positions, present

    @property
    def output_channels(self) -> list[str]:
        """What each output channel of the network is: ``["a", "b"]`` (normalised AB), or
        ``["a", "b", "log_var_a", "log_var_b"]`` with a confidence head (bundle.json's
        ``outputs.channels``; bundles that do not record it output AB only)."""
        outputs = self.metadata.get("outputs") or {}
        channels = outputs.get("channels") if isinstance(outputs, dict) else None
        return [str(name) for name in channels] if channels else list(AB_CHANNELS)

    @property
    def has_confidence(self) -> bool:
        """The network also predicts the variance of a*, b* (a confidence head)."""
        return all(name in self.output_channels for name in VARIANCE_CHANNELS)

    @property
    def confidence(self) -> dict[str, Any]:
        """bundle.json's ``confidence`` entry (e.g. the shrink constant chosen on validation)."""
        return copy.deepcopy(self.metadata.get("confidence") or {})

    @property
    def normalization(self) -> Normalization:
        """The :class:`sar_colorizer.sar.radiometry.Normalization` used in training."""
        from sar_colorizer.sar.radiometry import Normalization

        return Normalization.from_dict(self.metadata.get("normalization") or {})

    @property
    def speckle_filter(self) -> SpeckleFilter:
        """The :class:`sar_colorizer.sar.speckle.SpeckleFilter` applied before the network."""
        from sar_colorizer.sar.speckle import SpeckleFilter

        return SpeckleFilter.from_dict(self.metadata.get("speckle_filter") or {})

    @property
    def tile_multiple(self) -> int:
        """Tile height and width must be multiples of this (the network's total stride)."""
        if "tile_multiple" in self.metadata:
            return int(self.metadata["tile_multiple"])
        return int(getattr(self.model, "tile_multiple", 1))

    @property
    def tile_size(self) -> int:
        """Side of the tiles the network was trained on, and so the tile size to predict with.

        A U-Net with zero padding learns how far each pixel is from its tile's border, and on
        inputs larger than its training crops its deep layers see context they never saw in
        training; its colours drift (on the validation fragments of the s1s2-la-texas data,
        whole 1024-px images scored AB RMSE 6.05 where the same model on its 256-px training
        tile size scored 5.52). Inference therefore tiles at this size by default.

        Taken from ``tile_size`` in bundle.json, else from the training summary (crop or chip
        size), else :data:`DEFAULT_TILE_SIZE`; rounded up to :attr:`tile_multiple`.
        """
        size = self.metadata.get("tile_size")
        if not size:
            training = self.metadata.get("training") or {}
            size = (training.get("config") or {}).get("crop_size") or training.get("chip_size")
        size = int(size or DEFAULT_TILE_SIZE)
        multiple = max(1, self.tile_multiple)
        return max(multiple, -(-size // multiple) * multiple)

    @property
    def optical_convention(self) -> str:
        """How optical images were rendered as the RGB the model learned (``"dos"`` or
        ``"as-is"``; see :mod:`sar_colorizer.color.convention`). Bundles that record none were
        trained before conventions existed, on ``as-is`` images."""
        from sar_colorizer.color.convention import LEGACY_CONVENTION

        return str(self.metadata.get("optical_convention") or LEGACY_CONVENTION)

    @property
    def pixel_size(self) -> float:
        """Ground pixel size (metres) of the images the network was trained on.

        ``pixel_size`` in bundle.json; :data:`DEFAULT_PIXEL_SIZE` (Sentinel-1 GRD / Sentinel-2 at
        10 m) for bundles that do not record it. Inference resamples inputs of another pixel
        size to this one for the network (:mod:`sar_colorizer.io.pixel_size`).
        """
        value = self.metadata.get("pixel_size")
        size = float(value) if value is not None else DEFAULT_PIXEL_SIZE
        if not (size > 0 and size < float("inf")):
            raise ModelMismatchError(
                f"bundle.json pixel_size must be a positive number of metres, got {value!r}"
            )
        return size

    @property
    def tone(self) -> dict[str, Any]:
        """How L is made from the SAR: ``{"method": "matched", "l_quantiles": [...]}`` or similar."""
        return copy.deepcopy(self.metadata.get("tone") or {})

    def check_input(self, n_channels: int, band_names: Sequence[str | None] | None = None) -> None:
        """Refuse input whose bands do not match what the model was trained on.

        The count must match. Names are compared only where both sides name a polarisation
        (VV, VH, HH, HV, also inside names like ``Sigma0_VH``); unnamed bands ("1", None) pass.

        Args:
            n_channels: Number of bands of the input.
            band_names: The input's band names (descriptions or file suffixes), if known.

        Raises:
            ModelMismatchError: The input has a different number of bands or other
                polarisations; the message says what the model expects and how to choose.
        """
        expected = self.bands
        names = list(band_names) if band_names is not None else []
        given = [_band_label(name, index) for index, name in enumerate(names)]
        expected_text = _describe(len(expected), expected)
        given_text = _describe(n_channels, given if len(given) == n_channels else [])
        input_pols = [polarisation(name) for name in names]
        model_pols = [polarisation(name) for name in expected]
        # Only used where all() has established that every entry is a polarisation name.
        input_names = [pol or "" for pol in input_pols]
        model_names = [pol or "" for pol in model_pols]

        if n_channels != len(expected):
            if n_channels > len(expected):
                if all(model_pols) and all(pol in input_pols for pol in model_pols):
                    fix = f"choose {_one_or_them(expected)} with --bands {','.join(model_names)}"
                else:
                    fix = f"choose {_one_or_them(expected)} with --bands (names or 1-based numbers)"
            else:
                fix = (
                    f"give a raster with {', '.join(expected)} bands, or use a model trained on "
                    f"{n_channels} band{'s' if n_channels != 1 else ''}"
                )
            raise ModelMismatchError(
                f"model expects {expected_text}; input has {given_text}: {fix}"
            )

        if all(model_pols) and len(input_pols) == n_channels and all(input_pols):
            if input_pols != model_pols and n_channels == 1:
                # One band of another polarisation still colorises (VV and VH share most
                # structure); analysts often only have VV, so warn rather than refuse.
                logger.warning(
                    "model was trained on %s; input is %s: colours may be less reliable",
                    model_pols[0], input_pols[0],
                )
                return
            if input_pols != model_pols:
                if sorted(input_names) == sorted(model_names):
                    fix = f"reorder with --bands {','.join(model_names)}"
                else:
                    fix = (
                        f"give {', '.join(model_names)} data or use a model trained on "
                        f"{', '.join(input_names)}"
                    )
                raise ModelMismatchError(
                    f"model expects {expected_text}; input has {given_text}: {fix}"
                )


def _band_label(name: str | None, index: int) -> str:
    return str(name) if name not in (None, "") else str(index + 1)


def _describe(count: int, names: Sequence[str]) -> str:
    text = f"{count} band{'s' if count != 1 else ''}"
    return f"{text} ({', '.join(names)})" if names else text


def _one_or_them(expected: Sequence[str]) -> str:
    return "one" if len(expected) == 1 else f"{len(expected)}"


def default_bundle_path() -> Path:
    """The directory of the model shipped inside the package.

    Raises:
        SarColorError: This installation carries no default model.
    """
    folder = _package_weights() / DEFAULT_BUNDLE
    if not (folder.is_dir() and (folder / METADATA_FILE).is_file()):
        raise SarColorError(
            "this sarcolor installation has no default model (sar_colorizer/weights/default is "
            "missing); pass --model BUNDLE with a bundle written by 'sarcolor train'"
        )
    return Path(str(folder))


def _package_weights() -> Traversable:
    return resources.files("sar_colorizer") / "weights"


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a bundle's ``bundle.json`` without loading the model (no TensorFlow).

    Args:
        path: Bundle directory, or ``"default"`` for the shipped model.

    Returns:
        The parsed metadata.

    Raises:
        InputError: The path is missing, is not a bundle, its bundle.json is unreadable, or its
            format is newer than this version of sarcolor reads.
        SarColorError: ``"default"`` was asked for and the package carries no default model.
    """
    folder = _resolve(path)
    return _read_metadata(folder)


def _resolve(path: str | os.PathLike[str]) -> Path:
    if str(path) == DEFAULT_BUNDLE:
        return default_bundle_path()
    folder = Path(path)
    if not folder.exists():
        raise InputError(
            f"{folder}: no such model bundle; pass a directory written by 'sarcolor train' "
            "or 'default'"
        )
    if not folder.is_dir():
        raise InputError(
            f"{folder}: not a model bundle (a bundle is a directory with {MODEL_FILE} and "
            f"{METADATA_FILE}, written by 'sarcolor train')"
        )
    missing = [name for name in (MODEL_FILE, METADATA_FILE) if not (folder / name).is_file()]
    if missing:
        raise InputError(
            f"{folder}: not a model bundle ({' and '.join(missing)} missing; a bundle is a "
            "directory written by 'sarcolor train')"
        )
    return folder


def _read_metadata(folder: Path) -> dict[str, Any]:
    try:
        metadata = json.loads((folder / METADATA_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(
            f"{folder / METADATA_FILE}: unreadable bundle metadata ({error})"
        ) from error
    if not isinstance(metadata, dict):
        raise InputError(f"{folder / METADATA_FILE}: bundle metadata must be a JSON object")
    version = metadata.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InputError(
            f"{folder / METADATA_FILE}: missing or invalid format_version ({version!r})"
        )
    if version > FORMAT_VERSION:
        raise InputError(
            f"{folder}: bundle format {version} is newer than sarcolor {__version__} reads "
            f"(up to {FORMAT_VERSION}); upgrade sarcolor"
        )
    return metadata


def check_keras_file(path: str | os.PathLike[str]) -> None:
    """Check that ``path`` is a complete ``.keras`` archive before Keras opens it.

    Keras reports a truncated or foreign file as "File not found" (for a file that exists);
    this names the real problem.

    Raises:
        InputError: the file is missing, not a zip archive, damaged, or lacks the entries of
            a Keras model (``config.json``, ``model.weights.h5``).
    """
    path = Path(path)
    fix = "restore the bundle or train it again"
    if not path.is_file():
        raise InputError(f"{path}: no such model file; {fix}")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            damaged = archive.testzip()
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError) as error:
        size = path.stat().st_size
        raise InputError(
            f"{path}: not a complete Keras model file ({size} bytes, {error}); it is truncated "
            f"or damaged; {fix}"
        ) from None
    if damaged is not None:
        raise InputError(f"{path}: the entry {damaged} of the Keras archive is damaged; {fix}")
    missing = sorted({"config.json", "model.weights.h5"} - names)
    if missing:
        raise InputError(f"{path}: not a Keras model file (no {', '.join(missing)}); {fix}")


def load_bundle(path: str | os.PathLike[str] = DEFAULT_BUNDLE, runtime: str | None = None) -> Bundle:
    """Load a model bundle written by :func:`save_bundle` (``sarcolor train``).

    A bundle with a current ONNX graph (``model.onnx``, written by :func:`save_bundle`) runs on
    ONNX Runtime without importing TensorFlow (:mod:`sar_colorizer.onnx_network`); its Keras
    model loads when :attr:`Bundle.model` is first read. Otherwise the Keras model loads now,
    with ``keras.saving.load_model(safe_mode=True, compile=False)``: no arbitrary code runs,
    and the training loss and optimiser are not needed for inference.

    Args:
        path: Bundle directory, or ``"default"`` for the model shipped with the package.
        runtime: ``"auto"`` (ONNX Runtime where the bundle has a current graph), ``"onnx"``
            (require it) or ``"tensorflow"``; None: ``$SARCOLOR_RUNTIME``, else ``"auto"``.

    Returns:
        The :class:`Bundle`.

    Raises:
        InputError: The path is missing or not a bundle, the format is too new, the model file
            does not load, bundle.json disagrees with the model's input or output channels, or
            ``runtime="onnx"`` and the bundle has no usable graph.
        SarColorError: ``"default"`` was asked for and the package carries no default model.
    """
    from sar_colorizer.onnx_network import open_network, runtime_choice

    runtime = runtime_choice(runtime)
    folder = _resolve(path)
    metadata = _read_metadata(folder)
    check_keras_file(folder / MODEL_FILE)
    network = open_network(folder, folder / MODEL_FILE, runtime)
    model_inputs: int | None
    if network is None:
        bundle = Bundle(_load_keras_model(folder, metadata), metadata, folder)
        model_inputs = int(bundle.model.inputs[0].shape[-1])
        model_outputs = bundle.model.outputs[0].shape[-1]
    else:
        bundle = Bundle(None, metadata, folder, network)
        model_inputs = network.input_channels
        model_outputs = network.output_channels
    if (
        model_inputs is not None
        and "input_channels" in metadata
        and int(metadata["input_channels"]) != model_inputs
    ):
        raise InputError(
            f"{folder}: bundle.json says {metadata['input_channels']} input channels but the "
            f"model takes {model_inputs}; the bundle is inconsistent, re-export or retrain it"
        )
    if model_outputs is not None and int(model_outputs) != len(bundle.output_channels):
        raise InputError(
            f"{folder}: bundle.json names {len(bundle.output_channels)} output channels "
            f"({', '.join(bundle.output_channels)}) but the model outputs {model_outputs}; the "
            "bundle is inconsistent, re-export or retrain it"
        )
    logger.debug(
        "loaded bundle %s (bands %s, %s)", folder, metadata.get("bands"),
        "ONNX Runtime" if network is not None else "TensorFlow",
    )
    return bundle


def _load_keras_model(folder: Path, metadata: dict[str, Any]) -> Model:
    """The bundle's Keras model (imports TensorFlow).

    Raises:
        InputError: The model does not load, or takes other input channels than bundle.json
            says.
    """
    keras = _import_model_code()
    try:
        model = keras.saving.load_model(folder / MODEL_FILE, safe_mode=True, compile=False)
    except Exception as error:  # Keras raises many types for a corrupt/foreign file
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise InputError(
            f"{folder / MODEL_FILE}: the model does not load ({first_line}); restore the "
            "bundle or train it again"
        ) from error
    return model


def _import_model_code() -> Any:
    """Import keras and register the package's serializable classes before loading a model."""
    from sar_colorizer._tf import import_keras

    keras = import_keras()
    import sar_colorizer.losses  # noqa: F401  (registers WeightedChromaLoss)
    import sar_colorizer.nets.unet  # noqa: F401  (registers the model and its layers)

    return keras


def save_bundle(
    path: str | os.PathLike[str],
    model: Model,
    metadata: dict[str, Any],
    overwrite: bool = False,
    onnx: bool = True,
) -> Path:
    """Write a bundle directory atomically: into a temporary folder beside it, then renamed.

    Besides ``model.keras`` and ``bundle.json`` the bundle gets ``model.onnx``, the inference
    graph that predict runs on ONNX Runtime without importing TensorFlow
    (:mod:`sar_colorizer.onnx_network`), where tf2onnx can convert the model (else a warning,
    and predict runs the Keras model).

    Missing ``format_version``, ``package_version``, ``input_channels``, ``tile_multiple`` and
    ``model_config`` entries are filled in from the model and this package.

    Args:
        path: Bundle directory to create.
        model: The Keras model (a :class:`~sar_colorizer.nets.unet.ColorizationUNet`).
        metadata: bundle.json content (see the module docstring); must be JSON-serialisable
            (numpy scalars and arrays are converted).
        overwrite: Replace an existing ``path``.
        onnx: Write ``model.onnx`` too.

    Returns:
        The bundle path.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
        InputError: The metadata's bands disagree with the model's input channels.
    """
    target = Path(path)
    if target.exists() and not overwrite:
        raise OutputExistsError(f"{target} exists; pass --overwrite to replace it")

    meta = copy.deepcopy(dict(metadata))
    meta.setdefault("format_version", FORMAT_VERSION)
    meta.setdefault("package_version", __version__)
    model_channels = int(model.inputs[0].shape[-1])
    meta.setdefault("input_channels", model_channels)
    if int(meta["input_channels"]) != model_channels:
        raise InputError(
            f"metadata says {meta['input_channels']} input channels but the model takes "
            f"{model_channels}"
        )
    per_band = 2 if meta.get("optional_bands") else 1  # SAR and presence channel per band
    if meta.get("bands") is not None and per_band * len(meta["bands"]) != model_channels:
        raise InputError(
            f"metadata lists {len(meta['bands'])} bands ({', '.join(map(str, meta['bands']))}) "
            f"but the model takes {model_channels}"
        )
    if hasattr(model, "tile_multiple"):
        meta.setdefault("tile_multiple", int(model.tile_multiple))
    if "model_config" not in meta:
        try:
            meta["model_config"] = model.get_config()
        except NotImplementedError:
            pass
    names = getattr(model, "output_names_by_channel", None)
    if names is not None and "outputs" not in meta:
        meta["outputs"] = {"channels": list(names)}
    recorded = (meta.get("outputs") or {}).get("channels")
    model_outputs = model.outputs[0].shape[-1] if getattr(model, "outputs", None) else None
    if recorded and model_outputs is not None and len(recorded) != int(model_outputs):
        raise InputError(
            f"metadata lists {len(recorded)} output channels ({', '.join(recorded)}) but the "
            f"model outputs {model_outputs}"
        )
    text = json.dumps(meta, indent=2, default=_json_default)

    with atomic_folder(target, overwrite=overwrite) as staging:
        _inference_copy(model).save(staging / MODEL_FILE)
        (staging / METADATA_FILE).write_text(text + "\n", encoding="utf-8")
        if onnx:
            _write_graph(model, staging)
    logger.info("wrote model bundle %s", target)
    return target


def _write_graph(model: Model, folder: Path) -> None:
    """``model.onnx`` for the ``model.keras`` just written to ``folder``; a warning where the
    model cannot be converted (predict then runs it on TensorFlow)."""
    from sar_colorizer.onnx_graph import write_inference_graph
    from sar_colorizer.onnx_network import ONNX_FILE, file_digest

    if not (hasattr(model, "inputs") and hasattr(model, "layers")):
        return  # not a Keras model (nothing to convert)
    try:
        write_inference_graph(model, folder / ONNX_FILE, file_digest(folder / MODEL_FILE))
    except Exception as error:  # tf2onnx raises many types for what it cannot convert
        (folder / ONNX_FILE).unlink(missing_ok=True)
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        logger.warning(
            "%s: no ONNX graph written (%s); predict will run the Keras model on TensorFlow",
            folder.name, first_line,
        )


def replace_path(source: Path, target: Path, overwrite: bool) -> None:
    """Rename ``source`` (file or folder) to ``target``, replacing it only if ``overwrite``.

    The rename is exclusive without ``overwrite``; with it, a folder is swapped in atomically
    and the previous one deleted after (see :func:`sar_colorizer.io.atomic.publish`).

    Raises:
        OutputExistsError: ``target`` exists and ``overwrite`` is False.
    """
    publish(source, target, overwrite=overwrite)


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(
        f"bundle metadata value of type {type(value).__name__} is not JSON-serialisable"
    )


def _inference_copy(model: Model) -> Model:
    """The model without optimizer state or compile settings: a bundle is for inference and
    fine-tuning, and Adam's two moments would triple the file size (a model loaded from a
    compiled save keeps them too, so always rebuild)."""
    if not (hasattr(model, "from_config") and hasattr(model, "get_weights")):
        return model
    copy = model.__class__.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return copy


#: A model as the API takes it: a loaded :class:`Bundle`, a bundle folder written by
#: ``sarcolor train``, or ``"default"`` (the shipped model).
ModelLike: TypeAlias = "str | os.PathLike[str] | Bundle"

_CACHE: dict[str, Bundle] = {}
_CACHE_LOCK = threading.Lock()


def cached_bundle(model: ModelLike = "default") -> Bundle:
    """A loaded :class:`Bundle`; a path is loaded once per process and cached (so that
    notebooks, dask tasks and batch workers load each model once).

    Args:
        model: ``"default"`` (the shipped model), a bundle folder, or a loaded bundle
            (returned as is).

    Raises:
        InputError: The path is not a bundle.
    """
    if not isinstance(model, str | os.PathLike):
        return model
    key = os.fspath(model)
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = load_bundle(key)
        return _CACHE[key]
