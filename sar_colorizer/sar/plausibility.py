"""Warn when an input does not look like SAR backscatter in the scale it is read as.

The network sees whatever it is given: a Sentinel-2 band passed by mistake, or dB values
read as amplitude, run without an error and produce plausible-looking but meaningless
colours. These checks only warn (a user may know better); they look at the file name, the
band descriptions and the decimated values the scene statistics are computed from.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

# Sentinel-2 product and band names: S2A_MSIL2A_..., T31TFJ_20200101T103421_B04_10m.jp2,
# band descriptions "B4"/"B04"/"B8A", true-colour images "TCI".
_OPTICAL_NAME = re.compile(
    r"(^|[^a-z0-9])(s2[abc]?|msil[12][ac]|tci|b0?[1-9]|b8a|b1[0-2])([^a-z0-9]|$)", re.IGNORECASE
)


def optical_name(path: str | Path, descriptions: Sequence[str | None] = ()) -> str | None:
    """The file-name part or band description that names a Sentinel-2 (optical) band."""
    for text in (Path(path).stem, *(d for d in descriptions if d)):
        match = _OPTICAL_NAME.search(str(text))
        if match:
            return match.group(2)
    return None


def sar_warnings(
    path: str | Path,
    descriptions: Sequence[str | None],
    values: np.ndarray,
    valid: np.ndarray,
    scale: str,
) -> list[str]:
    """Reasons why ``values`` (raw, ``(C, H, W)``) do not look like SAR in ``scale``.

    Args:
        path: the input file (its name is checked for Sentinel-2 band names).
        descriptions: the band descriptions of the bands used.
        values: raw values of those bands (a decimated read is enough).
        valid: ``(H, W)`` True where there is data.
        scale: the scale the values are read as ("linear", "db", "amplitude", "display").

    Returns:
        One line per problem (empty when the input looks like SAR); each is also logged as a
        warning.
    """
    problems: list[str] = []
    name = optical_name(path, descriptions)
    if name is not None:
        problems.append(
            f"{path}: {name!r} in its name or band description looks like a Sentinel-2 "
            "(optical) band; sarcolor colorises Sentinel-1 SAR backscatter"
        )
    data = np.asarray(values, dtype=np.float64)[:, np.asarray(valid, dtype=bool)]
    data = data[np.isfinite(data)]
    if data.size:
        median = float(np.median(data))
        negative = float(np.mean(data < 0))
        if scale in ("amplitude", "linear") and negative > 0.01:
            problems.append(
                f"{path}: {negative:.0%} of the values are negative (median {median:.3g}), "
                f"impossible for {scale} backscatter; these look like dB: pass --input-scale db"
            )
        elif scale == "db" and not -60.0 <= median <= 20.0:
            problems.append(
                f"{path}: median {median:.3g} is far outside the usual -35..+5 dB of "
                "backscatter; check --input-scale"
            )
    for problem in problems:
        logger.warning("%s", problem)
    return problems
