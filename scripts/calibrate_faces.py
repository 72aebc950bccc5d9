"""Measure a face model on a labelled folder and print the FMR/FNMR curve and thresholds meeting a target.

Usage: .venv/bin/python scripts/calibrate_faces.py FOLDER [--model NAME] [--target-fmr 0.001] [--class-size 60]
                                                   [--json] [--write]

FOLDER holds one sub-folder per person (e.g. a province's own enrolment photos), each with that person's
photos (JPEG/PNG/WebP). Every photo is read as an enrolment photo (EXIF-upright, largest face); photos
without a face are listed and skipped. The printed MONITOR_* lines configure a deployment for its people;
they are printed only when there are enough different-person pairs to measure the target FMR (exit 3 if not).
`--write` stores them, with the figures they came from, as the model's operating points in its manifest
(monitor/data/face_models/NAME.json, or the deployment's own manifest file).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.adapters.face_engine import create_face_engine  # noqa: E402
from monitor.adapters.face_models import OperatingPoints, write_calibration  # noqa: E402
from monitor.decisions.calibration import calibrate, error_curve, pair_distances, rank_one_rate  # noqa: E402
from monitor.settings import Settings  # noqa: E402

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def iter_photos(folder: Path) -> Iterator[tuple[str, Path]]:
    """(person, photo path) for every photo in every person's sub-folder, in a stable order."""
    for person in sorted(p for p in folder.iterdir() if p.is_dir()):
        for photo in sorted(person.iterdir()):
            if photo.suffix.lower() in PHOTO_SUFFIXES:
                yield person.name, photo


def main(
    folder: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="one sub-folder per person")],
    target_fmr: Annotated[float, typer.Option(help="false match rate the 1:1 pass threshold may have")] = 0.001,
    target_fnmr: Annotated[float, typer.Option(help="share of genuine faces FACE_MISMATCH may refuse")] = 0.001,
    class_size: Annotated[int, typer.Option(help="trainees per class, for the one-to-many proxy rule")] = 60,
    processes: Annotated[int, typer.Option(help="face worker processes; -1 one per core")] = -1,
    model: Annotated[str | None, typer.Option(help="face model manifest (default MONITOR_FACE_MODEL)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object instead of tables")] = False,
    write: Annotated[bool, typer.Option("--write", help="store the thresholds in the model's manifest")] = False,
) -> None:
    """Print the curve and the thresholds for FOLDER."""
    photos = list(iter_photos(folder))
    if not photos:
        raise typer.BadParameter(f"{folder} has no person sub-folders with photos")
    settings = Settings() if model is None else Settings(face_model=model)
    face_model = settings.load_face_model()
    metric = face_model.metric
    engine = create_face_engine(processes, face_model)
    try:
        with ThreadPoolExecutor(max(engine.processes, 1)) as pool:
            scans = list(pool.map(lambda item: engine.scan(item[1].read_bytes(), "enrolment"), photos))
    finally:
        engine.close()
    encodings: dict[str, list[list[float]]] = {}
    skipped = []
    for (person, path), scan in zip(photos, scans, strict=True):
        if scan.faces:
            encodings.setdefault(person, []).append(scan.faces[0].encoding)
        else:
            skipped.append(str(path))
    genuine, impostor = pair_distances(encodings, metric)
    if len(genuine) == 0 or len(impostor) == 0:
        raise typer.BadParameter("need at least two people and one person with two usable photos")
    cal = calibrate(genuine, impostor, target_fmr, target_fnmr, class_size)
    start, stop = (0.30, 0.705) if metric == "euclidean" else (0.30, 0.905)
    curve = error_curve(genuine, impostor, [round(x, 2) for x in np.arange(start, stop, 0.02)])
    review_share = float(np.mean((genuine > cal.face_match) & (genuine <= cal.face_mismatch)))
    rank_one = rank_one_rate(encodings, metric)
    version = face_model.model_version
    if as_json:
        typer.echo(json.dumps({"model_version": version, "metric": metric, "people": len(encodings),
                               "review_share_genuine": review_share, "rank_one": rank_one,
                               "photos": sum(map(len, encodings.values())), "skipped": skipped,
                               "curve": [p.__dict__ for p in curve], "calibration": cal.__dict__,
                               "enough_pairs": cal.impostor_pairs * cal.target_fmr >= 10}, indent=2))
        return
    typer.echo(f"{version} ({metric}): {len(encodings)} people, {sum(map(len, encodings.values()))} photos "
               f"({len(skipped)} without a face skipped)")
    typer.echo(f"{cal.genuine_pairs} same-person pairs, {cal.impostor_pairs} different-person pairs; "
               f"with no false match among them the FMR is only known to be < {cal.fmr_resolution:.2%}\n")
    typer.echo(f"{'threshold':>9}  {'FMR':>8}  {'false matches':>13}  {'FNMR':>8}  {'non-matches':>11}")
    for p in curve:
        typer.echo(f"{p.threshold:9.2f}  {p.fmr:8.3%}  {p.false_matches:13d}  {p.fnmr:8.3%}  {p.false_non_matches:11d}")
    typer.echo(f"\nat a target FMR of {cal.target_fmr:.2%}: pass at <= {cal.face_match:.3f} "
               f"(genuine faces then sent to review: {cal.fnmr_at_match:.1%})")
    typer.echo(f"FACE_MISMATCH above {cal.face_mismatch:.3f} refuses <= {cal.target_fnmr:.2%} of genuine faces "
               f"(strangers still below it, to review: {cal.fmr_below_mismatch:.1%})")
    typer.echo(f"PROXY_SIGNIN over a class of {cal.class_size}: classmate within <= {cal.proxy_face_max:.3f}")
    typer.echo(f"expected review share of genuine sign-ins (between pass and FACE_MISMATCH): {review_share:.1%}; "
               f"rank-1 (each photo's nearest other photo is the same person's): {rank_one:.1%}")
    if cal.impostor_pairs * cal.target_fmr < 10:
        typer.echo(f"\nnot enough: {cal.impostor_pairs} different-person pairs cannot measure an FMR of "
                   f"{cal.target_fmr:.2%} (at least {int(10 / cal.target_fmr)} are needed, e.g. 150 people with "
                   f"one photo each); no thresholds are recommended from this folder")
        raise typer.Exit(3)
    typer.echo("\n# for the deployment's environment:")
    typer.echo(f"MONITOR_FACE_MATCH_THRESHOLD={cal.face_match:.3f}")
    typer.echo(f"MONITOR_FACE_MISMATCH_THRESHOLD={cal.face_mismatch:.3f}")
    typer.echo(f"MONITOR_PROXY_FACE_MAX_DISTANCE={cal.proxy_face_max:.3f}")
    if write:
        kept = face_model.manifest.operating_points
        points = OperatingPoints(**(kept.model_dump() | {
            "face_match_threshold": cal.face_match, "face_mismatch_threshold": cal.face_mismatch,
            "proxy_face_max_distance": cal.proxy_face_max}))
        path = write_calibration(settings.face_model, points, {
            "population": f"{folder.name}: {len(encodings)} people, {sum(map(len, encodings.values()))} photos",
            "figures": {"genuine_pairs": cal.genuine_pairs, "impostor_pairs": cal.impostor_pairs,
                        "fnmr_at_match": cal.fnmr_at_match, "fmr_below_mismatch": cal.fmr_below_mismatch,
                        "target_fmr": cal.target_fmr, "target_fnmr": cal.target_fnmr,
                        "review_share_genuine": review_share, "rank_one": rank_one},
            "note": "written by scripts/calibrate_faces.py --write"})
        typer.echo(f"\nwritten into {path}")


if __name__ == "__main__":
    typer.run(main)
