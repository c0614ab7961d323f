"""Grids of frames: the contact sheet of one render and the comparison sheet of several checkpoints.

Images are uint8 arrays of shape (H, W, C); sheets have a white background and 2-pixel gaps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

PADDING = 2
WHITE = 255
# Space around a column label, in pixels.
LABEL_MARGIN = 3


def subsample(count: int, limit: int) -> list[int]:
    """Pick at most ``limit`` frame indices spread evenly over ``count`` frames, always with the first and last."""
    if count <= limit:
        return list(range(count))
    if limit == 1:
        return [0]
    return sorted({round(i * (count - 1) / (limit - 1)) for i in range(limit)})


def tile(images: Sequence[np.ndarray], columns: int) -> np.ndarray:
    """Lay equal-sized (H, W, C) images out row by row, ``columns`` to a row."""
    height, width, channels = images[0].shape
    rows = math.ceil(len(images) / columns)
    sheet = np.full((PADDING + rows * (height + PADDING), PADDING + columns * (width + PADDING), channels), WHITE, dtype=np.uint8)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        y, x = PADDING + row * (height + PADDING), PADDING + column * (width + PADDING)
        sheet[y : y + height, x : x + width] = image
    return sheet


def contact_sheet(frames: np.ndarray, max_frames: int, columns: int | None) -> tuple[np.ndarray, list[int]]:
    """Tile the frames (evenly subsampled to ``max_frames``) in a near-square grid; return it and the frame indices shown."""
    shown_indices = subsample(len(frames), max_frames)
    columns = columns or math.ceil(math.sqrt(len(shown_indices)))
    return tile([frames[i] for i in shown_indices], min(columns, len(shown_indices))), shown_indices


@dataclass
class ComparisonLayout:
    """Pixel positions on a comparison sheet: a label band on top, then one column per checkpoint.

    ``column_x`` and ``row_y`` are the top-left corners of the image cells. ``column_left`` are the left
    edges of the columns, where the labels start.
    """

    width: int
    height: int
    header_height: int
    column_left: list[int]
    column_x: list[int]
    row_y: list[int]
    cell_width: int
    cell_height: int


def plan_comparison(labels: Sequence[str], cell_height: int, cell_width: int, rows: int, font: ImageFont.ImageFont) -> ComparisonLayout:
    """Size the columns to fit both the images and their labels, and centre each image in its column."""
    measure = ImageDraw.Draw(Image.new("L", (1, 1)))
    boxes = [measure.multiline_textbbox((0, 0), label, font=font) for label in labels]
    header_height = max(box[3] for box in boxes) + 2 * LABEL_MARGIN
    column_width = max(cell_width, *(box[2] + 2 * LABEL_MARGIN for box in boxes))

    column_left = [PADDING + index * (column_width + PADDING) for index in range(len(labels))]
    column_x = [left + (column_width - cell_width) // 2 for left in column_left]
    row_y = [header_height + PADDING + row * (cell_height + PADDING) for row in range(rows)]
    return ComparisonLayout(
        width=PADDING + len(labels) * (column_width + PADDING),
        height=header_height + PADDING + rows * (cell_height + PADDING),
        header_height=header_height,
        column_left=column_left,
        column_x=column_x,
        row_y=row_y,
        cell_width=cell_width,
        cell_height=cell_height,
    )


def comparison_sheet(columns: Sequence[np.ndarray], labels: Sequence[str], rows: Sequence[int]) -> tuple[np.ndarray, ComparisonLayout]:
    """Draw frames ``rows`` of each checkpoint's (F, H, W, C) frames as a column under its label."""
    font = ImageFont.load_default()
    _, height, width, channels = columns[0].shape
    layout = plan_comparison(labels, height, width, len(rows), font)

    header = Image.new("L" if channels == 1 else "RGB", (layout.width, layout.header_height), "white")
    draw = ImageDraw.Draw(header)
    for label, left in zip(labels, layout.column_left):
        draw.multiline_text((left + LABEL_MARGIN, LABEL_MARGIN), label, fill="black", font=font)

    sheet = np.full((layout.height, layout.width, channels), WHITE, dtype=np.uint8)
    sheet[: layout.header_height] = np.asarray(header).reshape(layout.header_height, layout.width, channels)
    for frames, x in zip(columns, layout.column_x):
        for frame_index, y in zip(rows, layout.row_y):
            sheet[y : y + height, x : x + width] = frames[frame_index]
    return sheet, layout
