"""The OCMF documents in what a user hands `evterm ocmf verify`.

`read_input(arg)` takes a file name (or "-" for stdin) or the text itself and finds:
- a Transparenzsoftware XML file (`<values><value><signedData>...`, read with
  defusedxml): each document exactly as written, with the key stored beside it;
- JSON (an e-receipt file: any string that is an OCMF document, e.g. "ocmf_begin",
  "ocmf_end", and the key under "public_key"/"publicKey"/"public_key_hex");
- text: one OCMF document per line ("OCMF|payload|signature", or with the key
  appended as a fourth section as a QR code carries it), or a hex-encoded one.
`BadInput` names what could not be read; nothing else escapes.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as DefusedET

KEY_NAMES = ("public_key", "publicKey", "public_key_hex", "publicKeyHex")
MAX_INPUT_BYTES = 16 * 1024 * 1024

__all__ = ["BadInput", "Found", "read_input"]


class BadInput(ValueError):
    """The input cannot be read as OCMF documents; the message says why."""


@dataclass(frozen=True)
class Found:
    """One OCMF document (the three sections, no key) and the key found with it."""

    text: str
    key_hex: str | None
    where: str  # e.g. "line 2", "XML value 1", "JSON ocmf_end"


def read_input(arg: str) -> list[Found]:
    text, name = _load(arg)
    stripped = text.strip()
    if not stripped:
        raise BadInput(f"{name} is empty")
    if stripped.startswith("<"):
        found = _from_xml(stripped, name)
    elif stripped[0] in "{[":
        found = _from_json(stripped, name)
    else:
        found = _from_lines(stripped)
    if not found:
        raise BadInput(f"no OCMF document found in {name}")
    return found


def _load(arg: str) -> tuple[str, str]:
    if arg == "-":
        return sys.stdin.read(MAX_INPUT_BYTES), "stdin"
    if arg.lstrip().startswith(("OCMF|", "<", "{", "[")):
        return arg, "the text given"
    path = Path(arg)
    try:
        if path.is_file():
            if path.stat().st_size > MAX_INPUT_BYTES:
                raise BadInput(f"{arg}: larger than {MAX_INPUT_BYTES // 1024 // 1024} MiB")
            return path.read_bytes().decode("utf-8"), arg
    except OSError as exc:
        raise BadInput(f"{arg}: cannot be read ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise BadInput(f"{arg}: not UTF-8 text") from exc
    if _is_hex(arg.strip()):
        return arg, "the text given"
    if path.exists():
        raise BadInput(f"{arg}: not a file")
    raise BadInput(f"{arg}: no such file, and not an OCMF text (OCMF|payload|signature)")


def _is_hex(text: str) -> bool:
    return len(text) >= 16 and len(text) % 2 == 0 and all(
        c in "0123456789abcdefABCDEF" for c in text)


def _split_key(text: str) -> tuple[str, str | None]:
    """"OCMF|p|s|key" -> ("OCMF|p|s", "key"); the key section may be empty."""
    parts = text.split("|")
    if len(parts) >= 4 and parts[0] == "OCMF":
        # the payload and signature are JSON without "|" in the formats meters write
        key = "".join(parts[-1].split()) or None
        return "|".join(parts[:-1]), key
    return text, None


def _from_lines(text: str) -> list[Found]:
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if _is_hex(line):
            try:
                line = bytes.fromhex(line).decode("utf-8").strip()
            except (ValueError, UnicodeDecodeError):
                raise BadInput(f"line {number}: hex that is not an OCMF text") from None
        if not line.startswith("OCMF|"):
            raise BadInput(f"line {number}: not an OCMF document (it must start with "
                           "OCMF|)")
        doc, key = _split_key(line)
        found.append(Found(doc, key, f"line {number}"))
    return found


def _from_xml(text: str, name: str) -> list[Found]:
    """The documents of a Transparenzsoftware XML file, each exactly as it stands in
    its signedData element (the signature covers those bytes), with its publicKey."""
    try:
        root = DefusedET.fromstring(text)
    except (DefusedET.ParseError, ValueError) as exc:  # ValueError: defusedxml's refusals
        raise BadInput(f"{name}: not well-formed XML ({exc})") from exc
    if root.tag != "values":
        raise BadInput(f"{name}: not a Transparenzsoftware XML file (the root element is "
                       f"<{root.tag}>, not <values>)")
    found = []
    for number, value in enumerate(root.findall("value"), start=1):
        signed = value.find("signedData")
        if signed is None or not (signed.text or "").strip():
            raise BadInput(f"{name}: XML value {number} has no signedData")
        if signed.get("format", "OCMF") != "OCMF":
            raise BadInput(f"{name}: XML value {number} is {signed.get('format')}, not OCMF")
        doc, embedded = _split_key((signed.text or "").strip())
        key_element = value.find("publicKey")
        key = "".join((key_element.text or "").split()) if key_element is not None else ""
        found.append(Found(doc, key or embedded, f"XML value {number}"))
    return found


def _from_json(text: str, name: str) -> list[Found]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BadInput(f"{name}: not valid JSON ({exc})") from exc
    docs: list[tuple[str, str]] = []
    keys: list[str] = []

    def walk(value: Any, where: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if k in KEY_NAMES and isinstance(v, str) and v.strip():
                    keys.append("".join(v.split()))
                else:
                    walk(v, str(k))
        elif isinstance(value, list):
            for item in value:
                walk(item, where)
        elif isinstance(value, str) and value.strip().startswith("OCMF|"):
            docs.append((value.strip(), where))

    walk(data, "")
    if len(set(keys)) > 1:
        raise BadInput(f"{name}: holds {len(set(keys))} different public keys")
    found = []
    for doc, where in docs:
        doc, embedded = _split_key(doc)
        found.append(Found(doc, embedded or (keys[0] if keys else None),
                           f"JSON {where}" if where else "JSON"))
    return found
