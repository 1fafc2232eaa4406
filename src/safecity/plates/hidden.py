"""Anonymising boxes: the flat boxes some published plate data sets draw over characters.

A box hides one character. Reading such a crop, the reader marks a ``?`` where a box
is (``PlateReader(find_hidden=True)``, set by ``safecity eval`` for sets whose crops
carry them). Real plates never show such boxes in quantity; this module finds them in
the image alone, never from labels.
"""

from __future__ import annotations

import cv2
import numpy as np


def _alike(box: list[int], ref: np.ndarray) -> bool:
    """Two anonymising boxes of one plate: about one size, on one row."""
    bh, rh = box[3] - box[1], ref[3] - ref[1]
    return (abs(bh - rh) <= 0.2 * rh and abs(box[1] - ref[1]) <= 0.2 * rh
            and abs((box[2] - box[0]) - (ref[2] - ref[0])) <= 0.35 * (ref[2] - ref[0]))


def _spread(image: np.ndarray) -> np.ndarray:
    """How much each pixel's 3 x 3 neighbourhood varies: its range, in the channel that
    varies most."""
    kernel = np.ones((3, 3), np.uint8)
    spread = cv2.dilate(image, kernel).astype(np.int16) - cv2.erode(image, kernel)
    return spread.max(2) if spread.ndim == 3 else spread


def _flat_boxes(spread: np.ndarray, levels: tuple[int, ...], fill: float, pairs: bool,
                lowest: float = 0.2) -> list[list[int]]:
    """Box-shaped flat regions (x0, y0, x1, y1) of a spread map (see :func:`hidden_boxes`),
    strictest level first, at least ``lowest`` of the crop's height tall. ``pairs``: a box
    found with none before it must be alike to another of its own level at the first
    level too."""
    h = spread.shape[0]
    out: list[list[int]] = []
    for step, level in enumerate(levels):
        n, _, stats, _ = cv2.connectedComponentsWithStats((spread <= level).astype(np.uint8), connectivity=4)
        found = [[int(x) - 1, int(y) - 1, int(x + bw) + 1, int(y + bh) + 1]
                 for x, y, bw, bh, area in stats[1:]
                 if lowest * h <= bh <= 0.95 * h and bw >= 3 and 1.0 <= bh / bw <= 4 and area >= fill * bw * bh]
        if step or pairs:
            # boxes a looser level adds must look like those found already (one size, one
            # row); with none found yet, like another box of their own level
            if out:
                ref = np.median(np.array(out, np.float64), 0)
                found = [b for b in found if _alike(b, ref)]
            else:
                found = [b for b in found if any(_alike(b, np.array(o, np.float64)) for o in found if o is not b)]
        for box in found:
            if not any(box[0] < b[2] and b[0] < box[2] for b in out):  # a new place along the plate
                out.append(box)
    return out


# Where the colour test finds no box at all: dark night crops, where a box and the dark
# plate around it are both flat at the colour levels and merge into one shapeless patch.
# Their brightness alone (luma, less noisy than the colours JPEG subsamples) at stricter
# levels parts them, with fragments (fill LUMA_FILL); found that way, boxes must come in
# pairs alike from the first level on, as flat patches of a plate do not, and be as tall
# as a plate's characters (LUMA_LOWEST of the crop's height: smaller flat patches of a
# dark plate passed otherwise). On uc3m-es the right number of boxes on 708 crops instead
# of 703 (with the twin search below); Chinese crops with a box found stay 2 of 477.
# Levels up to 8, as for colour, after the strict ones (seventh round): the boxes of two
# noisy day crops whose colour test found none (713 -> 715 right counts; still 2 Chinese).
LUMA_FLATNESS, LUMA_FILL, LUMA_LOWEST = (3, 4, 5, 6, 7, 8), 0.6, 0.5


def hidden_boxes(crop: np.ndarray, flatness: tuple[int, ...] = (6, 8),
                 fill: float = 0.7) -> list[tuple[int, int, int, int]]:
    """Anonymising boxes drawn over characters (x, y, w, h): character-sized regions of
    one flat colour (up to JPEG noise: ``flatness`` grey levels across 3 x 3 pixels),
    taller than wide, filling at least ``fill`` of their bounding rectangle. A printed
    character is never flat, and the plate's own background runs around the characters
    instead of forming a character-sized block, so on plates without such boxes this
    finds nothing (or, rarely, a gap). JPEG noise varies from box to box: the strictest
    flatness that shows a box wins; a looser one adds a box elsewhere only if it is alike
    (size, row) to the boxes found already, or, with none found yet, to another box of
    its own level: the boxes of one plate are drawn alike, flat patches of a plate are not.
    With none found, brightness alone is tried (:data:`LUMA_FLATNESS`). Among three or
    more, one unlike the others is dropped (:func:`_drawn_alike`). A lone box, found
    alone or left alone by that test, gets its twin where one is found
    (:func:`_boxes_like`)."""
    h, w = crop.shape[:2]
    if h < 12 or w < 24 or crop.ndim != 3:
        return []
    out = _flat_boxes(_spread(crop), flatness, fill, pairs=False)
    if not out:
        out = _flat_boxes(_spread(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)), LUMA_FLATNESS, LUMA_FILL,
                          pairs=True, lowest=LUMA_LOWEST)
    # one box broken into fragments (JPEG noise across it): join pieces that touch
    # when the joined piece is still a box (taller than wide)
    out.sort()
    joined: list[list[int]] = []
    for b in out:
        if joined:
            a = joined[-1]
            u = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
            if b[0] <= a[2] + 1 and (u[3] - u[1]) >= 0.9 * (u[2] - u[0]):
                joined[-1] = u
                continue
        joined.append(b)
    if not joined:
        return []
    # anonymising boxes cover whole characters: all about as tall as the tallest
    tallest = max(b[3] - b[1] for b in joined)
    boxes = [(x0, y0, x1 - x0, y1 - y0) for x0, y0, x1, y1 in joined if y1 - y0 >= 0.6 * tallest]
    if len(boxes) >= 3:
        boxes = _drawn_alike(crop, boxes)
    if len(boxes) == 1:  # (found alone, or left alone among patches unlike it)
        boxes = sorted(boxes + _boxes_like(crop, boxes[0]))
    return boxes


def _inside(crop: np.ndarray, box: tuple[int, int, int, int]) -> tuple[np.ndarray, float]:
    """A box's inside, less a LIKE_INNER border: mean colour and spread (the largest
    channel's standard deviation)."""
    x, y, w, h = box
    dx, dy = max(1, int(w * LIKE_INNER)), max(1, int(h * LIKE_INNER))
    pixels = crop[max(0, y + dy) : y + h - dy, max(0, x + dx) : x + w - dx].reshape(-1, crop.shape[2])
    pixels = pixels.astype(np.float64)
    return pixels.mean(0), float(pixels.std(0).max())


# Boxes of one plate are drawn alike: among three or more found, one whose mean colour is
# more than ODD_COLOUR grey levels from their median, or that varies more than ODD_SPREAD
# times their median spread (or 6 levels more), is a flat patch of the plate (its
# background beside a character, a gap). On uc3m-es the 7 crops with a box too many had
# such a box (a white patch among grey boxes, one straddling a character); dropping them
# gave the right count on 668 crops instead of 663 and 0.868 -> 0.876. With two boxes
# found there is no telling which is odd.
ODD_COLOUR, ODD_SPREAD = 24.0, 3.0


def _drawn_alike(crop: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """``boxes`` without those unlike the others (see :data:`ODD_COLOUR`)."""
    inside = [_inside(crop, b) for b in boxes]
    colour = np.median([mean for mean, _ in inside], 0)
    spread = float(np.median([s for _, s in inside]))
    keep = [b for b, (mean, s) in zip(boxes, inside)
            if np.abs(mean - colour).max() <= ODD_COLOUR and s <= max(ODD_SPREAD * spread, spread + 6.0)]
    return keep or boxes


# A lone anonymising box found: its twin may be there, too noisy for the flatness test.
# A window of its size is a candidate when its inside (less a LIKE_INNER border) varies
# at most LIKE_SPREAD times as much as the box's, or LIKE_FLOOR grey levels more (10: a
# clean box varies by about 1 level, its twin over a character in a noisier part of the
# image by up to 8, a character's window by 20 or more; the floor was 2 until the seventh
# round, which left 3 crops of uc3m-es with a lone box), and its
# mean colour is within LIKE_COLOUR levels of the box's. Boxes are filled with the colour
# of what they hide, so boxes of one plate differ in colour (a dark box over a dark
# character, a light one over a thin one) and the colour limit is loose. The window may
# sit anywhere in the crop: above or below the box's row on a plate seen at an angle, on
# the other row of a two-line plate. The flattest candidate is taken, and only it: the
# others are most often the plate's own flat background. On uc3m-es (every crop hides two
# characters), searching the box's row only, at most one window per run of passing
# windows, with colours within 8 levels: the right number of boxes on 668 crops, too many
# on 3; now on 703, too many on none (700 within 0.4 box heights of the row). Crops with
# boxes found stay 2 of 477 Chinese.
LIKE_INNER, LIKE_SPREAD, LIKE_FLOOR, LIKE_COLOUR = 0.2, 1.5, 10.0, 40.0


def _boxes_like(crop: np.ndarray, box: tuple[int, int, int, int]) -> list[tuple[int, int, int, int]]:
    """The window most like ``box`` (x, y, w, h) in the crop, not overlapping it: a list
    of one, or empty."""
    height, width = crop.shape[:2]
    x, y, w, h = box
    dx, dy = max(1, int(w * LIKE_INNER)), max(1, int(h * LIKE_INNER))
    inner_w, inner_h = w - 2 * dx, h - 2 * dy
    if inner_w < 2 or inner_h < 2 or width < w or height < h:
        return []
    # per channel, the sums of pixels and of squares over any window, from integral images
    pixels = crop.astype(np.float64)
    sums = cv2.integral(pixels).reshape(height + 1, width + 1, -1)
    squares = cv2.integral(pixels * pixels).reshape(height + 1, width + 1, -1)
    colour, spread = _inside(crop, box)
    spread = max(spread, 1.0)
    limit = max(LIKE_SPREAD * spread, spread + LIKE_FLOOR)
    n = inner_w * inner_h
    starts = np.arange(0, width - w + 1)
    lefts, rights = starts + dx, starts + dx + inner_w
    beside = ~((starts < x + 0.8 * w) & (x < starts + 0.8 * w))  # not over the box itself
    best: tuple[float, int, int] | None = None
    for top in range(height - h + 1):
        t0, t1 = top + dy, top + dy + inner_h
        mean = (sums[t1, rights] - sums[t0, rights] - sums[t1, lefts] + sums[t0, lefts]) / n
        square = (squares[t1, rights] - squares[t0, rights] - squares[t1, lefts] + squares[t0, lefts]) / n
        varies = np.sqrt(np.maximum(square - mean * mean, 0)).max(1)
        ok = (beside | (abs(top - y) >= 0.8 * h)) & (varies <= limit) & (np.abs(mean - colour).max(1) <= LIKE_COLOUR)
        if ok.any():
            i = int(np.flatnonzero(ok)[np.argmin(varies[ok])])
            if best is None or varies[i] < best[0]:
                best = (float(varies[i]), int(starts[i]), top)
    return [] if best is None else [(best[1], best[2], w, h)]
