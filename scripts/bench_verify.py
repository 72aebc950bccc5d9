"""Benchmark: the verification pipeline, per face model, against the naive face_recognition way on 12 MP phone
check-ins.

Usage: .venv/bin/python scripts/bench_verify.py [--count 12] [--faces DIR] [--models dlib-resnet,faceplugin-arcface]

Makes `count` 4000x3000 JPEG check-ins from the sample faces (half stored sideways with EXIF orientation 6,
as phones do), each claiming an enrolled identity (some falsely). Each method runs in its own process on one
core, so peak memory (max RSS) is its own. Prints per method: check-ins per second per core, median and p95
latency, peak memory, decisions; then the throughput ratio, each pipeline's cost against its floor (the time to
embed one already-located face, measured in the same run), and what each model costs per check-in against dlib.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ENROL = {"obama": "obama/obama.jpg", "biden": "biden/biden.jpg", "alex": "alex_lacamoire/alex_lacamoire1.jpg",
         "kit": "kit_harington/john1.jpeg", "rose": "rose_leslie/img1.jpg"}
# (photo, person in it, identity claimed)
PROBES = [
    ("obama/obama1.jpg", "obama", "obama"), ("obama/obama2.jpg", "obama", "obama"),
    ("biden/biden2.jpg", "biden", "biden"), ("alex_lacamoire/img1.jpg", "alex", "alex"),
    ("kit_harington/john2.jpeg", "kit", "kit"), ("rose_leslie/img2.jpg", "rose", "rose"),
    ("biden/biden2.jpg", "biden", "obama"), ("obama/obama-720p.jpg", "obama", "kit"),
    ("kit_harington/johnsnow_test1.jpg", "kit", "kit"), ("alex_lacamoire/alex-lacamoire.png", "alex", "rose"),
    ("rose_leslie/img2.jpg", "rose", "alex"), ("obama/obama3.jpg", "obama", "obama"),
]


def make_checkin(src: Path, rotate: bool) -> bytes:
    """A 3000x4000 portrait selfie (12 MP); if `rotate`, stored as 4000x3000 with EXIF orientation 6."""
    from PIL import Image, ImageOps

    image = ImageOps.exif_transpose(Image.open(src)).convert("RGB")
    image = ImageOps.fit(image, (3000, 4000), Image.Resampling.BICUBIC, centering=(0.5, 0.35))
    exif = Image.Exif()
    if rotate:
        image = image.transpose(Image.Transpose.ROTATE_90)  # exif_transpose(orientation 6) turns it back
        exif[0x0112] = 6
    out = io.BytesIO()
    image.save(out, "JPEG", quality=92, exif=exif)
    return out.getvalue()


def run_method(method: str, workdir: Path, faces: Path) -> dict:
    """Run in a fresh process: enrol, then time every check-in; returns figures and decisions."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import face_recognition
    import numpy as np

    from monitor.adapters.face_dlib import FaceEngine
    from monitor.adapters.face_models import load_face_model
    from monitor.adapters.face_scan import PLANS
    from monitor.adapters.photo_decode import decode_upright_rgb
    from monitor.decisions.faces import match_face
    from monitor.settings import Settings

    cases = json.loads((workdir / "cases.json").read_text())
    model = method.split(":", 1)[1] if ":" in method else "dlib-resnet"
    engine = FaceEngine(load_face_model(model))
    t = Settings().thresholds(engine.model.manifest)
    known: dict[str, list[float]] = {}
    for person, rel in ENROL.items():
        if method == "naive":
            img = face_recognition.load_image_file(str(faces / "people" / rel))
            known[person] = face_recognition.face_encodings(img)[0]
        else:
            known[person] = engine.scan((faces / "people" / rel).read_bytes(), "enrolment").encodings[0]
    latencies, decisions, floors = [], [], []
    for case in cases:
        data = (workdir / case["file"]).read_bytes()
        started = time.perf_counter()
        if method == "naive":
            img = face_recognition.load_image_file(io.BytesIO(data))
            locations = face_recognition.face_locations(img)
            encodings = face_recognition.face_encodings(img, locations)
            if len(encodings) != 1:
                decision = "no_face" if not encodings else "several"
            else:
                decision = "match" if face_recognition.compare_faces([known[case["claim"]]], encodings[0])[0] \
                    else "mismatch"
        else:
            scan = engine.scan(data, "selfie")
            if len(scan.faces) != 1:
                decision = "no_face" if not scan.faces else "several"
            else:
                decision = "match" if match_face(scan.faces[0].encoding, [known[case["claim"]]], t.face_match,
                                                 t.metric).matched else "mismatch"
        latencies.append(time.perf_counter() - started)
        decisions.append(decision)
        if method != "naive" and decision in ("match", "mismatch"):
            # The floor: embedding one face whose location is already known, on the same decoded image.
            img, _, _ = decode_upright_rgb(data, PLANS["selfie"].decode_px)
            box = [tuple(round(v / scan.decode_scale) for v in scan.faces[0].box)]
            t0 = time.perf_counter()
            engine._embedder.embed(img, box)  # type: ignore[arg-type]
            floors.append(time.perf_counter() - t0)
    latencies_sorted = sorted(latencies)
    return {
        "method": method,
        "per_core_per_s": len(latencies) / sum(latencies),
        "median_s": statistics.median(latencies),
        "p95_s": latencies_sorted[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "decisions": decisions,
        "floor_s": statistics.median(floors) if floors else None,
        "numpy": np.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=12, help="number of 12 MP check-ins (max 12)")
    parser.add_argument("--faces", type=Path, default=Path(os.environ.get("MONITOR_FACES_DIR",
                                                                          REPO.parent / "shared" / "faces")))
    parser.add_argument("--models", default="dlib-resnet,faceplugin-arcface", help="face models' pipelines to run")
    parser.add_argument("--method", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.method:  # child process
        print(json.dumps(run_method(args.method, args.workdir, args.faces)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        workdir = Path(tmp)
        cases = []
        for i, (rel, person, claim) in enumerate(PROBES[: args.count]):
            name = f"c{i:02d}.jpg"
            (workdir / name).write_bytes(make_checkin(args.faces / "people" / rel, rotate=i % 2 == 1))
            cases.append({"file": name, "photo": rel, "person": person, "claim": claim, "rotated": i % 2 == 1})
        (workdir / "cases.json").write_text(json.dumps(cases))
        results = {}
        methods = [f"pipeline:{m}" for m in args.models.split(",") if m] + ["naive"]
        for method in methods:
            out = subprocess.run([sys.executable, __file__, "--method", method, "--workdir", str(workdir),
                                  "--faces", str(args.faces)], check=True, capture_output=True, text=True)
            results[method] = json.loads(out.stdout.strip().splitlines()[-1])
    expected = ["match" if c["person"] == c["claim"] else "mismatch" for c in cases]
    print(f"{len(cases)} check-ins, 4000x3000 JPEG, {sum(c['rotated'] for c in cases)} EXIF-rotated; one core each\n")
    print(f"{'method':<30}{'check-ins/s/core':>18}{'median s':>10}{'p95 s':>9}{'peak MB':>9}{'right':>7}")
    for method, r in results.items():
        right = sum(d == e for d, e in zip(r["decisions"], expected, strict=True))
        print(f"{method:<30}{r['per_core_per_s']:>18.2f}{r['median_s']:>10.3f}{r['p95_s']:>9.3f}"
              f"{r['peak_rss_mb']:>9.0f}{right:>4}/{len(cases)}")
    pipelines = [m for m in results if m.startswith("pipeline")]
    print("\ndecisions (expected / " + " / ".join(pipelines) + " / naive):")
    worse = 0
    for i, (c, e) in enumerate(zip(cases, expected, strict=True)):
        got = [results[m]["decisions"][i] for m in pipelines]
        n = results["naive"]["decisions"][i]
        flag = ""
        if n == e and any(p != e for p in got):
            flag, worse = "  <- a pipeline wrong where naive is right", worse + 1
        print(f"  {c['photo']:<36} claims {c['claim']:<6} rotated={c['rotated']!s:<5} {e:<9}"
              + "".join(f"{p:<9}" for p in got) + f"{n:<9}{flag}")
    print()
    for m in pipelines:
        ratio = results[m]["per_core_per_s"] / results["naive"]["per_core_per_s"]
        floor = results[m]["floor_s"]
        mean_cost = 1 / results[m]["per_core_per_s"]
        print(f"{m}: {ratio:.1f}x naive's throughput (target >= 20x); floor (embed one located face) {floor:.3f} s, "
              f"mean cost {mean_cost:.3f} s = {mean_cost / floor:.2f}x floor")
    if "pipeline:dlib-resnet" in results:
        base = results["pipeline:dlib-resnet"]["median_s"]
        for m in pipelines:
            if m != "pipeline:dlib-resnet":
                extra = (results[m]["median_s"] - base) * 1000
                print(f"{m} against dlib: {extra:+.0f} ms per check-in (median; target <= +15 ms)")
    print(f"decisions where a pipeline is wrong and naive right: {worse} (target 0)")


if __name__ == "__main__":
    main()
