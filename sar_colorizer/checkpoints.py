"""Training checkpoints that survive any kill, and a resume that verifies what it loads.

Keras' ``BackupAndRestore`` writes ``latest.weights.h5`` in place: a run stopped while it
writes (Ctrl-C at the end of an epoch, ``kill -9``) leaves a half-written file that the next
run fails to load with a traceback. Here every checkpoint is a folder written with
:func:`sar_colorizer.io.atomic.atomic_folder` (complete or absent, never half-written):

* ``backup/epoch-NNNNN/`` (weights with the optimizer state, and ``state.json`` with the
  epoch and the weights' SHA-256) after every epoch; the newest two are kept, so that there
  is a good one to fall back on even if the newest is damaged later.
* ``best/`` (weights and ``state.json`` with the monitored value) whenever the monitored loss
  improves; it is swapped in atomically, and the best value survives a resume.

On resume the newest backup whose checksum matches and whose weights load is used; a damaged
one is reported in one line and the one before it is tried; with none, training starts over.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import shutil
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sar_colorizer.io.atomic import atomic_folder
from sar_colorizer.signals import raise_if_interrupted

if TYPE_CHECKING:
    import keras

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "checkpoint.weights.h5"  # Keras needs the .weights.h5 ending
STATE_FILE = "state.json"
_EPOCH_FOLDER = re.compile(r"^epoch-(\d{5})$")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_checkpoint(folder: Path, model: keras.Model, state: dict[str, Any],
                     overwrite: bool = False) -> None:
    """Write the model's weights (with its optimizer state) and ``state`` to ``folder``,
    atomically."""
    with atomic_folder(folder, overwrite=overwrite) as staging:
        model.save_weights(str(staging / WEIGHTS_FILE))
        state = {**state, "sha256": _sha256(staging / WEIGHTS_FILE)}
        (staging / STATE_FILE).write_text(json.dumps(state), encoding="utf-8")


def read_checkpoint(folder: Path, model: keras.Model) -> dict[str, Any]:
    """Verify a checkpoint folder and load its weights into ``model``; returns its state.

    On any failure the model's and optimizer's variables are put back as they were, so that a
    damaged checkpoint never leaves half-loaded weights.

    Raises:
        ValueError: the checkpoint is incomplete, its checksum differs, or it does not load
            (the message says which).
    """
    state_file, weights = folder / STATE_FILE, folder / WEIGHTS_FILE
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"no readable {STATE_FILE} ({error})") from None
    if not weights.is_file():
        raise ValueError(f"no {WEIGHTS_FILE}")
    if state.get("sha256") != _sha256(weights):
        raise ValueError(f"{WEIGHTS_FILE} does not match its checksum")
    variables = list(model.weights)
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
        variables += list(optimizer.variables)
    saved = [variable.numpy() for variable in variables]
    try:
        with warnings.catch_warnings():  # Keras warns per layer of a foreign file
            warnings.simplefilter("ignore")
            model.load_weights(str(weights))
    except Exception as error:
        for variable, value in zip(variables, saved, strict=True):
            variable.assign(value)
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ValueError(f"the weights do not load ({first_line})") from None
    return dict(state)


def best_record(best_dir: Path) -> tuple[str, float] | None:
    """``(monitor, value)`` of the best epoch kept in ``best_dir`` by the keep-the-best
    callback of :func:`make_callbacks`; None when no epoch has been kept.

    Raises:
        ValueError: The record is there but unreadable (the message names the file).
    """
    state_file = best_dir / STATE_FILE
    if not state_file.is_file():
        return None
    try:
        state = json.loads(state_file.read_text())
        return str(state.get("monitor", "")), float(state["value"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise ValueError(f"{state_file} is unreadable") from None


def make_callbacks(work_dir: Path, monitor: str) -> list[keras.callbacks.Callback]:
    """The resume-after-interruption and keep-the-best callbacks for ``model.fit``.

    Args:
        work_dir: the run's working folder (``<model>.work/``).
        monitor: the loss to keep the best weights of (``val_loss`` or ``loss``).
    """
    from sar_colorizer._tf import import_keras

    keras_api: Any = import_keras()  # here, not at import: this module stays TensorFlow-free

    class ResumableBackup(keras_api.callbacks.Callback):
        """Saves ``backup/epoch-NNNNN/`` after every epoch; restores the newest good one."""

        def __init__(self, backup_dir: Path) -> None:
            super().__init__()
            self.backup_dir = backup_dir

        def _folders(self) -> list[Path]:
            if not self.backup_dir.is_dir():
                return []
            found = [p for p in self.backup_dir.iterdir() if _EPOCH_FOLDER.match(p.name)]
            return sorted(found, reverse=True)

        def on_train_begin(self, logs: dict | None = None) -> None:
            candidates = self._folders()
            for folder in candidates:
                try:
                    state = read_checkpoint(folder, self.model)
                except ValueError as problem:
                    logger.warning("checkpoint %s is unusable: %s; trying an earlier one",
                                   folder, problem)
                    continue
                self.model._initial_epoch = int(state["epoch"])
                logger.info("resuming after epoch %d from %s", state["epoch"], folder)
                return
            if candidates or (self.backup_dir / "latest.weights.h5").exists():
                logger.warning("no usable checkpoint in %s; training starts from the beginning",
                               self.backup_dir)

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            raise_if_interrupted()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            folder = self.backup_dir / f"epoch-{epoch + 1:05d}"
            write_checkpoint(folder, self.model, {"epoch": epoch + 1}, overwrite=True)
            for older in self._folders()[2:]:  # the newest two: a fallback if one is damaged
                shutil.rmtree(older, ignore_errors=True)

    class BestWeights(keras_api.callbacks.Callback):
        """Keeps the weights of the epoch with the lowest ``monitor`` in ``best/``."""

        def __init__(self, best_dir: Path) -> None:
            super().__init__()
            self.best_dir = best_dir
            self.best = math.inf
            try:
                recorded = best_record(best_dir)
            except ValueError as problem:
                logger.warning("%s; the best epoch is chosen anew", problem)
            else:
                if recorded is not None:
                    self.best = recorded[1]

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            value = (logs or {}).get(monitor)
            if value is None or not math.isfinite(float(value)) or float(value) >= self.best:
                return
            self.best = float(value)
            write_checkpoint(self.best_dir, self.model,
                             {"epoch": epoch + 1, "monitor": monitor, "value": self.best},
                             overwrite=True)

    return [ResumableBackup(work_dir / "backup"), BestWeights(work_dir / "best")]


def restore_best(model: keras.Model, work_dir: Path) -> bool:
    """Load the best weights of the run into ``model`` (keeping the current ones, with a
    warning, if they are damaged); returns whether they were loaded."""
    best_dir = work_dir / "best"
    if not best_dir.is_dir():
        return False
    try:
        read_checkpoint(best_dir, model)
    except ValueError as problem:
        logger.warning("best weights in %s are unusable (%s); keeping the last epoch's",
                       best_dir, problem)
        return False
    return True
