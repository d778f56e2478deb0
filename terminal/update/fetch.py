"""The board's side: fetch one release and verify it with python-tuf's ngclient.

`fetch_release(repository_url, version, metadata_dir, download_dir, installed_version)`
refreshes the top-level metadata from `metadata_dir/root.json` on (root rotation,
signature thresholds, expiry, versions never going back, the timestamp's expiry that
catches a frozen repository), looks the release's target up in the signed targets
metadata, downloads it and checks its length and hashes, and returns the tar's path.
Every failure is one of the typed `UpdateError`s below, with a message naming what.

`repository_url`: `http://` or `https://` (python-tuf's urllib3 fetcher), or a folder
(`file:///media/usb/evterm` or a plain path: `FolderFetcher`, a USB stick).

Based on python-tuf's ngclient documentation (tuf.ngclient.Updater, FetcherInterface)
and the TUF specification's client workflow; the checks themselves are python-tuf's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

from tuf.api import exceptions as tuf_errors
from tuf.ngclient import FetcherInterface, Updater, Urllib3Fetcher

from terminal.update.manifest import parse_version, target_name

log = logging.getLogger(__name__)
CHUNK_BYTES = 256 * 1024


class UpdateError(Exception):
    """A release could not be fetched and verified (the subclass says why)."""


class InvalidSignature(UpdateError):
    """Metadata with bad or too few signatures, or a file that does not match it."""


class ExpiredMetadata(UpdateError):
    """Signed metadata past its expiry (also what a frozen repository looks like)."""


class RollbackAttack(UpdateError):
    """Metadata older than the trusted one, or a release older than the installed one."""


class RepositoryUnreachable(UpdateError):
    """No answer from the server, no such folder, or a file the repository lacks."""


class NoSuchRelease(UpdateError):
    """The signed targets metadata has no release of that version."""


class TrustedRootMissing(UpdateError):
    """The board has no trusted root.json in its metadata folder."""


class FolderFetcher(FetcherInterface):
    """Reads `file://` URLs from the file system: a repository copied to a USB stick.
    A missing file is answered like an HTTP 404, as python-tuf expects of a fetcher."""

    def _fetch(self, url: str) -> Iterator[bytes]:
        path = Path(unquote(urlparse(url).path))
        try:
            file = path.open("rb")
        except FileNotFoundError:
            raise tuf_errors.DownloadHTTPError(f"no file {path}", 404) from None
        except OSError as error:
            raise tuf_errors.DownloadError(f"cannot read {path}: {error}") from None

        def chunks() -> Iterator[bytes]:
            with file:
                while chunk := file.read(CHUNK_BYTES):
                    yield chunk

        return chunks()


def _base_and_fetcher(repository_url: str, timeout_s: int) -> tuple[str, FetcherInterface]:
    parsed = urlparse(repository_url)
    if parsed.scheme in ("http", "https"):
        if not parsed.netloc:
            raise RepositoryUnreachable(f"no host in the repository URL {repository_url!r}")
        return repository_url.rstrip("/"), Urllib3Fetcher(socket_timeout=timeout_s)
    if parsed.scheme == "file":
        folder = Path(unquote(parsed.path))
    elif parsed.scheme == "" and repository_url:
        folder = Path(repository_url)
    else:
        raise RepositoryUnreachable(f"not an http(s) URL, file URL or folder: "
                                    f"{repository_url!r}")
    folder = folder.resolve()
    if not (folder / "metadata").is_dir():
        raise RepositoryUnreachable(f"{folder}: no metadata folder, not a release repository")
    return folder.as_uri(), FolderFetcher()


def _check_versions(version: str, installed_version: str | None) -> None:
    try:
        wanted = parse_version(version)
        installed = None if installed_version is None else parse_version(installed_version)
    except ValueError as error:
        raise NoSuchRelease(str(error)) from None
    if installed is not None and wanted < installed:
        raise RollbackAttack(f"release {version} is older than the installed "
                             f"{installed_version}")


def fetch_release(repository_url: str, version: str, metadata_dir: Path,
                  download_dir: Path, installed_version: str | None = None,
                  timeout_s: int = 30) -> Path:
    """Verify and download release `version`; the verified tar's path in download_dir."""
    _check_versions(version, installed_version)
    if not (metadata_dir / "root.json").is_file():
        raise TrustedRootMissing(f"no trusted root metadata {metadata_dir / 'root.json'} "
                                 "(install the operator's root.json, docs/updates.md)")
    base, fetcher = _base_and_fetcher(repository_url, timeout_s)
    name = target_name(version)
    try:
        updater = Updater(metadata_dir=str(metadata_dir),
                          metadata_base_url=f"{base}/metadata/",
                          target_base_url=f"{base}/targets/",
                          target_dir=str(download_dir), fetcher=fetcher,
                          bootstrap=None)  # the board's root.json is the trust anchor
        updater.refresh()
        info = updater.get_targetinfo(name)
        if info is None:
            raise NoSuchRelease(f"the repository {repository_url} has no release {version}")
        signed_version = (info.custom or {}).get("version") if isinstance(
            info.custom, dict) else None
        if signed_version != version:
            raise NoSuchRelease(f"{name} in the repository is signed as version "
                                f"{signed_version!r}, not {version!r}")
        download_dir.mkdir(parents=True, exist_ok=True)
        path = download_dir / name
        cached = updater.find_cached_target(info, str(path))
        if cached is None:
            updater.download_target(info, str(path))
    except UpdateError:
        raise
    except Exception as error:
        raise _translate(error, repository_url) from error
    log.info("release %s verified: %s", version, path)
    return path


def _translate(error: Exception, repository_url: str) -> Exception:
    """python-tuf's exception -> ours (OSError of the board's own folders passes)."""
    text = f"{type(error).__name__}: {error}"
    if isinstance(error, tuf_errors.ExpiredMetadataError):
        return ExpiredMetadata(f"expired metadata from {repository_url}: {error}")
    if isinstance(error, tuf_errors.BadVersionNumberError):
        return RollbackAttack(f"metadata from {repository_url} is older than the trusted "
                              f"one: {error}")
    if isinstance(error, tuf_errors.UnsignedMetadataError):
        return InvalidSignature(f"signatures do not verify: {error}")
    if isinstance(error, tuf_errors.LengthOrHashMismatchError | \
                  tuf_errors.DownloadLengthMismatchError):
        return InvalidSignature(f"a file does not match its signed length and hashes "
                                f"(tampered): {error}")
    if isinstance(error, tuf_errors.DownloadHTTPError):
        return RepositoryUnreachable(f"{repository_url} answered HTTP {error.status_code}: "
                                     f"{error}")
    if isinstance(error, tuf_errors.DownloadError):
        cause = error.__cause__ or error.__context__
        return RepositoryUnreachable(f"cannot reach {repository_url}: {error}"
                                     + (f" ({cause})" if cause else ""))
    if isinstance(error, tuf_errors.RepositoryError):
        return InvalidSignature(f"metadata from {repository_url} does not verify: {text}")
    if isinstance(error, OSError):
        return error
    return UpdateError(f"unexpected failure fetching {repository_url}: {text}")
