"""Signed releases with The Update Framework (python-tuf): the operator's side builds
them (`evterm release`), the board's side fetches and verifies them (`fetch_release`).

The contract between the two sides (docs/updates.md says the same for operators):

A release is one TUF target file `evterm-<version>.tar` (`manifest.target_name`) holding

- `release.json`: `{"version": V, "python": "3.11", "wheels": [file names],
  "requirement": "evterm==V"}` (`manifest.ReleaseManifest`, `manifest.read_manifest`);
- `wheels/`: evterm's wheel and every dependency wheel at the pins of
  constraints/board.txt, so the board installs offline with
  `pip install --no-index --find-links wheels/ evterm==V` (the wheelhouse holds the
  touchscreen's packages too, so `evterm[ui]==V` resolves from it as well).

The target's `custom` in the signed targets metadata is `{"version": V}`. A version is
numbers separated by dots (`0.1.0`, `1.12`); versions compare number by number
(`manifest.parse_version`).

The repository (`evterm release init/add/timestamp/sign/renew`, terminal/update/release.py)
is a folder any static HTTP server can serve: `metadata/` (consistent snapshots:
`N.root.json`, `N.targets.json`, `N.snapshot.json`, and `timestamp.json`) and `targets/`
(`<sha256>.evterm-V.tar`). A copy of it on a USB stick works the same way.

The board (terminal/update/fetch.py):

    fetch_release(repository_url, version, metadata_dir, download_dir,
                  installed_version=None, timeout_s=30) -> Path

`repository_url` is `http(s)://host/path` (the folder above), `file:///path` or a plain
path (a USB stick). `metadata_dir` is the board's trusted TUF state, writable by the
updater: `metadata_dir/root.json` is the operator's root metadata, installed with the
board (docs/updates.md), and python-tuf keeps the newest verified metadata there, which
is what catches a rollback of metadata versions from one update to the next. It returns
the verified tar in `download_dir`. Errors (all `UpdateError`):
`InvalidSignature` (bad or too few signatures, a tampered target or metadata file),
`ExpiredMetadata` (also a frozen repository: an old timestamp that has run out),
`RollbackAttack` (a metadata version older than the trusted one, or a release older
than `installed_version`), `RepositoryUnreachable` (no server, no folder, a file
missing), `NoSuchRelease` (no such target), `TrustedRootMissing` (no root.json in
metadata_dir). OSError when download_dir cannot be written.

The board's side around the fetch (docs/updates.md, "The board"), one job per module:
- `layout.py`: /opt/evterm (`[update] root_dir`): releases/VERSION/, the `current`
  symlink and its atomic switch;
- `journal.py`: the updater's journal (each step written before it is acted on) and the
  FirmwareStatus reports it holds for the daemon to send;
- `request.py`: an update asked for (the backend's `firmware_update`, the service CLI),
  a file the updater takes;
- `source.py`: `fetch_release` (a repository URL or a folder on a USB stick) and what a
  fetch failure is reported as;
- `install.py`: a release's venv built offline from its wheels;
- `daemon_checks.py`: the daemon through its local API: idle, healthy;
- `updater.py`: the steps, resumed from the journal after a kill or a power loss;
- `relay.py`: in the daemon, the journal's reports into the outbox;
- `cli.py`: `evterm update ...`.
"""
