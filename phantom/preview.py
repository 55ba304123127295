"""Contact sheet and looping preview of phantom studies, for judging realism by eye.

``python -m phantom.preview docs/images`` writes ``phantom_contact_sheet.png``
(SAX, 2CH, 3CH and 4CH at end-diastole and end-systole, and LGE, for a
normal, a dilated-reduced-EF, a hypertrophic and an infarct study) and
``phantom_preview.webp`` (the same studies' SAX and 4CH cine, looping).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from phantom.measurements import study_labels, study_parameters
from phantom.series import LGE_PHASE_FRACTION, SeriesLayout, render_series
from phantom.study import StudyPlan, plan_study

PREVIEW_SEED = 2026
TILE_PX = 176
ZOOM = 1.6  # the tiles show the central 1/1.6 of each field of view


@dataclass(frozen=True)
class Example:
    """One study shown in the contact sheet and the preview."""

    title: str
    scenario: str
    required_labels: dict[str, bool]  # label values the example must have


EXAMPLES = (
    Example("normal", "normal", {}),
    Example("dilated, reduced EF", "dilated", {"lv_dilation": True, "lv_systolic_dysfunction": True}),
    Example("hypertrophic (HCM)", "hypertrophic", {"lv_hypertrophy": True}),
    Example("infarct (LAD/RCA/LCx)", "ischemic", {"regional_wma": True, "lge": True}),
)


def find_study(example: Example, seed: int = PREVIEW_SEED) -> StudyPlan:
    """Return the first study of ``seed`` with the example's scenario, an LGE series and its labels."""
    for index in range(200):
        plan = plan_study(seed, index, example.scenario)
        if not plan.acquisition.has_lge:
            continue
        labels = study_labels(study_parameters(plan))
        if all(labels[name] == value for name, value in example.required_labels.items()):
            return plan
    raise LookupError(f"no study of scenario {example.scenario!r} with {example.required_labels} among 200 of seed {seed}")


def _frames(plan: StudyPlan, view: str, kind: str, phases: tuple[float, ...]) -> np.ndarray:
    if view == "sax":
        middle = len(plan.sax.planes) // 2
        planes, levels = (plan.sax.planes[middle],), (plan.sax.levels_mm[middle],)
    else:
        planes, levels = (plan.long_axis[view],), (0.0,)
    return render_series(plan, SeriesLayout(kind, view, planes, levels, phases)).pixels[0]


def _tile(image: np.ndarray, size: int = TILE_PX, zoom: float = ZOOM) -> Image.Image:
    """Crop the central part (planes are centred on the heart), window it and fit it into a square tile."""
    rows, columns = image.shape
    keep_rows, keep_columns = int(rows / zoom), int(columns / zoom)
    top, left = (rows - keep_rows) // 2, (columns - keep_columns) // 2
    image = image[top : top + keep_rows, left : left + keep_columns]
    low, high = np.percentile(image, [1.0, 99.5])
    scaled = np.clip((image.astype(np.float32) - low) / max(high - low, 1.0), 0.0, 1.0)
    picture = Image.fromarray((scaled * 255).astype(np.uint8))
    scale = size / max(picture.size)
    picture = picture.resize((round(picture.width * scale), round(picture.height * scale)), Image.Resampling.BICUBIC)
    tile = Image.new("L", (size, size))
    tile.paste(picture, ((size - picture.width) // 2, (size - picture.height) // 2))
    return tile


def contact_sheet(path: Path, seed: int = PREVIEW_SEED) -> None:
    """Write the contact sheet PNG: one row per example, ED and ES per view, then LGE."""
    columns = [(view, phase) for view in ("sax", "2ch", "3ch", "4ch") for phase in ("ED", "ES")] + [("lge", "")]
    header, label_width = 22, 150
    sheet = Image.new("L", (label_width + TILE_PX * len(columns), header + TILE_PX * len(EXAMPLES)), 0)
    draw = ImageDraw.Draw(sheet)
    for column, (view, phase) in enumerate(columns):
        draw.text((label_width + column * TILE_PX + 6, 4), f"{view.upper()} {phase}".strip(), fill=255)
    for row, example in enumerate(EXAMPLES):
        plan = find_study(example, seed)
        es = plan.es_phase / plan.acquisition.phases
        top = header + row * TILE_PX
        draw.text((6, top + TILE_PX // 2 - 6), example.title, fill=255)
        for column, (view, phase) in enumerate(columns):
            if view == "lge":
                image = _frames(plan, "sax", "lge", (LGE_PHASE_FRACTION,))[0]
            else:
                image = _frames(plan, view, "cine", (0.0 if phase == "ED" else es,))[0]
            sheet.paste(_tile(image), (label_width + column * TILE_PX, top))
    sheet.save(path, optimize=True)


def looping_preview(path: Path, seed: int = PREVIEW_SEED, size: int = 144) -> None:
    """Write an animated WebP: per example, SAX and 4CH cine side by side, one loop per cycle."""
    movies = []
    for example in EXAMPLES:
        plan = find_study(example, seed)
        phases = tuple(p / plan.acquisition.phases for p in range(plan.acquisition.phases))
        movies.append((plan, [_frames(plan, view, "cine", phases) for view in ("sax", "4ch")]))
    steps = 24
    frames = []
    for step in range(steps):
        canvas = Image.new("L", (2 * size, size * len(movies)))
        for row, (plan, views) in enumerate(movies):
            phase = int(step * plan.acquisition.phases / steps)
            for column, movie in enumerate(views):
                canvas.paste(_tile(movie[phase], size), (column * size, row * size))
        frames.append(canvas)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=40, loop=0, lossless=False, quality=80)


def main(argv: list[str]) -> None:
    """Write both images into the folder given as the only argument."""
    if len(argv) != 1:
        raise SystemExit("usage: python -m phantom.preview OUT_FOLDER")
    folder = Path(argv[0])
    folder.mkdir(parents=True, exist_ok=True)
    contact_sheet(folder / "phantom_contact_sheet.png")
    looping_preview(folder / "phantom_preview.webp")


if __name__ == "__main__":
    main(sys.argv[1:])
