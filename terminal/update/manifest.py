"""What a release is: the target's name, release.json inside its tar, release versions.

`ReleaseManifest` is release.json (`{"version", "python", "wheels", "requirement"}`);
`read_manifest(tar)` reads and checks it from a release tar; `parse_version` turns
`1.2.10` into `(1, 2, 10)` so versions compare number by number.
"""

from __future__ import annotations

import json
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST_NAME = "release.json"
WHEELS_DIR = "wheels"
PYTHON_VERSION = "3.11"
_VERSION = re.compile(r"\d+(\.\d+)*")


class BadRelease(ValueError):
    """A release tar or its release.json is not what the contract says."""


def parse_version(text: str) -> tuple[int, ...]:
    """`1.2.10` -> (1, 2, 10); ValueError naming the text for anything else."""
    if not isinstance(text, str) or not _VERSION.fullmatch(text):
        raise ValueError(f"not a release version (numbers and dots, e.g. 1.2.0): {text!r}")
    return tuple(int(part) for part in text.split("."))


def target_name(version: str) -> str:
    """The TUF target path of a release."""
    parse_version(version)
    return f"evterm-{version}.tar"


@dataclass(frozen=True)
class ReleaseManifest:
    version: str
    wheels: tuple[str, ...]
    python: str = PYTHON_VERSION

    @property
    def requirement(self) -> str:
        return f"evterm=={self.version}"

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "python": self.python,
                "wheels": list(self.wheels), "requirement": self.requirement}

    @classmethod
    def from_json(cls, data: Any) -> ReleaseManifest:
        if not isinstance(data, dict):
            raise BadRelease(f"{MANIFEST_NAME} is not a JSON object")
        version, wheels, python = data.get("version"), data.get("wheels"), data.get("python")
        try:
            parse_version(version)
        except ValueError as error:
            raise BadRelease(f"{MANIFEST_NAME}: version: {error}") from None
        if not isinstance(wheels, list) or not wheels or not all(
                isinstance(w, str) and w.endswith(".whl") and "/" not in w for w in wheels):
            raise BadRelease(f"{MANIFEST_NAME}: wheels must be a list of wheel file names")
        if not isinstance(python, str):
            raise BadRelease(f"{MANIFEST_NAME}: python must be a version text")
        manifest = cls(version=version, wheels=tuple(wheels), python=python)
        if data.get("requirement") != manifest.requirement:
            raise BadRelease(f"{MANIFEST_NAME}: requirement must be {manifest.requirement!r},"
                             f" not {data.get('requirement')!r}")
        return manifest


def read_manifest(tar_path: Path) -> ReleaseManifest:
    """release.json of a release tar, checked against the wheels the tar holds."""
    try:
        with tarfile.open(tar_path) as tar:
            names = set(tar.getnames())
            member = tar.extractfile(MANIFEST_NAME) if MANIFEST_NAME in names else None
            if member is None:
                raise BadRelease(f"{tar_path}: no {MANIFEST_NAME}")
            data = json.loads(member.read().decode("utf-8"))
    except (tarfile.TarError, OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadRelease(f"{tar_path}: not a release tar: {error}") from None
    manifest = ReleaseManifest.from_json(data)
    missing = [w for w in manifest.wheels if f"{WHEELS_DIR}/{w}" not in names]
    if missing:
        raise BadRelease(f"{tar_path}: {MANIFEST_NAME} lists wheels the tar lacks: {missing}")
    return manifest
