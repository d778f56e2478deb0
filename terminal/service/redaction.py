"""What a technician may see of the configuration, and the check that a bundle carries
no secret (docs/service.md, "Diagnostics" and "The export bundle").

Provides:
- `redact_config(config)`: every section and key as running, secret values masked "***"
  (string values whose key names a key, PIN, token, secret, password or the technician
  cards; paths are shown, never the files' contents); `render_toml(sections, header)`
  writes them as TOML.
- `scrub_json(value)`: a JSON value with anything that could be a card number removed.
- `secret_texts(config)`: what must never be in a bundle, by source: the configured key
  files' contents and the pins file's hashes; `scan_folder(folder, secrets)`: the files
  below `folder` that hold any of them or a card number.

On failure: nothing raises for a missing or unreadable key or pins file (`secret_texts`
skips it: there is then nothing of it to leak); `scan_folder` lets OSError of reading
the bundle propagate. Problems name the file and the source, never the secret.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
from pathlib import Path
from typing import Any

from terminal.config import Config
from terminal.kernel.redact import card_numbers_in, scrub
from terminal.service.pins import load_pins

MASK = "***"
# string config values whose key names one of these are secrets (paths are shown)
SECRET_NAME = re.compile(r"key|pin|token|secret|password|technician")
PATH_SUFFIXES = ("_file", "_path", "_dir", "_root")


def _is_secret(name: str, value: Any) -> bool:
    return (isinstance(value, str) and value != "" and not name.endswith(PATH_SUFFIXES)
            and SECRET_NAME.search(name) is not None)


def redact_config(config: Config) -> dict[str, dict[str, Any]]:
    """Every section and key as running, secret values masked "***": string values of
    keys that name a key, PIN, token, secret, password or the technician cards. Paths
    (`*_file`, `*_path`, `*_dir`, `*_root`) are shown; the files' contents never are."""
    sections: dict[str, dict[str, Any]] = {}
    for section in dataclasses.fields(config):
        values = dataclasses.asdict(getattr(config, section.name))
        sections[section.name] = {key: MASK if _is_secret(key, value) else value
                                  for key, value in values.items()}
    return sections


def render_toml(sections: dict[str, dict[str, Any]], header: str = "") -> str:
    lines = [f"# {line}" for line in header.splitlines()]
    for name, values in sections.items():
        lines += ["", f"[{name}]"]
        for key, value in values.items():
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, int | float):
                text = repr(value)
            else:
                text = json.dumps(str(value))
            lines.append(f"{key} = {text}")
    return "\n".join(lines) + "\n"


def scrub_json(value: Any) -> Any:
    """`value` with anything that could be a card number replaced, in texts and in
    numbers (a number that passes for one, e.g. a free-bytes count, becomes the text)."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value if scrub(str(value)) == str(value) else "[number removed]"
    if isinstance(value, dict):
        return {key: scrub_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_json(item) for item in value]
    return value


def secret_texts(config: Config) -> dict[str, list[bytes]]:
    """What must never be in a bundle, by where it comes from: the contents of every
    configured key file (whole, and each line of a PEM body) and every PIN hash of the
    pins file (whole, salt and hash)."""
    found: dict[str, list[bytes]] = {}
    for section in dataclasses.fields(config):
        values = dataclasses.asdict(getattr(config, section.name))
        for key, value in values.items():
            if not (key.endswith("_file") and "key" in key and value):
                continue
            try:
                content = Path(value).read_text(encoding="utf-8", errors="replace").strip()
            except OSError:
                continue
            pieces = {content, content.lower(), content.upper()}
            pieces |= {line.strip() for line in content.splitlines()
                       if len(line.strip()) >= 16 and not line.startswith("-----")}
            found[f"{section.name}.{key}"] = [p.encode() for p in pieces if len(p) >= 16]
    if config.service.pins_file:
        with contextlib.suppress(OSError, ValueError):
            hashes = []
            for encoded in load_pins(config.service.pins_file).values():
                hashes.append(encoded)
                hashes += encoded.split("$")[4:]
            found["service.pins_file"] = [h.encode() for h in hashes if len(h) >= 16]
    return found


def scan_folder(folder: Path, secrets_by_source: dict[str, list[bytes]]) -> list[str]:
    """Problems found in the files below `folder`: key material, PIN hashes, card
    numbers; each names the file and the source (never the secret)."""
    problems = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        for source, pieces in secrets_by_source.items():
            if any(piece in data for piece in pieces):
                problems.append(f"{path.name}: material of {source}")
        if card_numbers_in(data.decode("utf-8", errors="replace")):
            problems.append(f"{path.name}: a card number")
    return problems
