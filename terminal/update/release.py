"""`evterm release`: the operator's side of signed updates (docs/updates.md).

    evterm release init --repo DIR --keys DIR [--threshold N] [--keys-per-role N]
                        [--root-expiry-days D] [--targets-expiry-days D]
                        [--snapshot-expiry-days D] [--timestamp-expiry-days D]
    evterm release add --repo DIR --keys DIR --version V [--wheelhouse DIR]
                       [--source DIR] [--constraints FILE]
    evterm release timestamp --repo DIR --keys DIR [--expiry-days D]
    evterm release sign --repo DIR --keys DIR --role root|targets
    evterm release renew --repo DIR --keys DIR --role root|targets

`init` makes the keys (ed25519, files 0600) and the first metadata; `add` builds the
release (evterm's wheel from the checkout, the dependency wheels at the pins of
constraints/board.txt from the package index, or the wheels of `--wheelhouse DIR`),
packs `evterm-V.tar` and signs new targets, snapshot and timestamp metadata;
`timestamp` signs a new timestamp, and a new snapshot when half of its period has
passed (run it from cron well within the timestamp's expiry); `sign` adds another key
holder's signatures where a threshold needs more than one key; `renew` signs a new
version of root or targets with a fresh expiry, before the old one runs out.

Exit codes: 0 done, 1 a build failed, 2 bad input (named on stderr), 4 done but a
role has fewer signatures than its threshold (boards refuse it until `sign`).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING

from terminal.update import wheelhouse
from terminal.update.manifest import parse_version, target_name
from terminal.update.roles import DEFAULT_EXPIRY_DAYS, OFFLINE_ROLES, ROLES

if TYPE_CHECKING:
    from terminal.update.repository import ReleaseRepository, Signing


def _repository(args: argparse.Namespace) -> ReleaseRepository:
    """python-tuf is imported when a release command runs, not for every `evterm`."""
    from terminal.update.repository import ReleaseRepository

    return ReleaseRepository(args.repo, args.keys)


class BadInput(ValueError):
    """The command's input cannot make a release (the message names what)."""


def _report(signings: list[Signing]) -> int:
    from terminal.update.repository import report

    return report(signings)


def _problems() -> tuple[type[Exception], ...]:
    from terminal.update.keys import KeyFileError
    from terminal.update.repository import RepositoryProblem

    return BadInput, RepositoryProblem, KeyFileError, OSError


def _days(text: str) -> Decimal:
    try:
        days = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a number of days: {text!r}") from None
    if not days.is_finite() or days < 0 or days > 3650:
        raise argparse.ArgumentTypeError(f"days must be between 0 and 3650: {text!r}")
    return days


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= number <= 20:
        raise argparse.ArgumentTypeError(f"must be between 1 and 20: {text!r}")
    return number


def register(subparsers: argparse._SubParsersAction) -> None:
    release = subparsers.add_parser(
        "release", help="signed releases: a TUF repository for the boards' updates")
    sub = release.add_subparsers(dest="release_command", required=True)

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--repo", type=Path, required=True,
                            help="the repository folder (serve it as it is)")
        parser.add_argument("--keys", type=Path, required=True,
                            help="the folder of private key files (never publish it)")

    init = sub.add_parser("init", help="new keys and the first TUF metadata")
    common(init)
    init.add_argument("--threshold", type=_positive, default=1,
                      help="signatures root and targets need (default 1)")
    init.add_argument("--keys-per-role", type=_positive, default=1,
                      help="keys made for root and targets (default 1)")
    for role in ROLES:
        init.add_argument(f"--{role}-expiry-days", type=_days,
                          default=DEFAULT_EXPIRY_DAYS[role],
                          help=f"how long {role} metadata stays valid "
                          f"(default {DEFAULT_EXPIRY_DAYS[role]})")
    init.set_defaults(func=run_init)

    add = sub.add_parser("add", help="build a release and sign it into the repository")
    common(add)
    add.add_argument("--version", required=True, help="the release's version (evterm's)")
    add.add_argument("--wheelhouse", type=Path, default=None,
                     help="take the wheels from this folder instead of the package index")
    add.add_argument("--source", type=Path, default=wheelhouse.checkout(),
                     help="the evterm checkout to build (default: this one)")
    add.add_argument("--constraints", type=Path, default=None,
                     help="the pins (default: SOURCE/constraints/board.txt)")
    add.set_defaults(func=run_add)

    timestamp = sub.add_parser("timestamp", help="sign a new timestamp (cron)")
    common(timestamp)
    timestamp.add_argument("--expiry-days", type=_days, default=None,
                           help="how long it stays valid (default: the repository's)")
    timestamp.set_defaults(func=run_timestamp)

    sign = sub.add_parser("sign", help="add your signatures to root or targets")
    common(sign)
    sign.add_argument("--role", choices=OFFLINE_ROLES, required=True)
    sign.set_defaults(func=run_sign)

    renew = sub.add_parser("renew", help="root or targets again with a fresh expiry")
    common(renew)
    renew.add_argument("--role", choices=OFFLINE_ROLES, required=True)
    renew.set_defaults(func=run_renew)


def _fail(message: str, code: int = 2) -> int:
    print(f"evterm release: {message}", file=sys.stderr)
    return code


def run_init(args: argparse.Namespace) -> int:
    if args.threshold > args.keys_per_role:
        return _fail(f"--threshold {args.threshold} needs at least as many keys "
                     f"(--keys-per-role {args.keys_per_role})")
    expiry = {role: getattr(args, f"{role}_expiry_days") for role in ROLES}
    repo = _repository(args)
    try:
        signings = repo.init(args.threshold, args.keys_per_role, expiry)
    except _problems() as error:
        return _fail(str(error))
    print(f"repository {args.repo} (serve it as it is), keys in {args.keys} (keep them "
          f"offline; boards are installed with {args.repo}/metadata/root.json)")
    return _report(signings)


def _release_wheels(args: argparse.Namespace, scratch: Path) -> list[Path]:
    """evterm's wheel of args.version and its dependency wheels."""
    if args.wheelhouse is not None and not args.wheelhouse.is_dir():
        raise BadInput(f"--wheelhouse: no folder {args.wheelhouse}")
    given = sorted(args.wheelhouse.glob("*.whl")) if args.wheelhouse else []
    evterm = [w for w in given if w.name.startswith("evterm-")
              and wheelhouse.wheel_version(w) == args.version]
    if not evterm:
        evterm = [wheelhouse.build_evterm_wheel(args.source, scratch / "evterm")]
    built = wheelhouse.wheel_version(evterm[0])
    if built != args.version:
        raise BadInput(f"the checkout {args.source} is evterm {built}, not "
                       f"{args.version} (set terminal/__init__.py's __version__)")
    constraints = args.constraints or args.source / "constraints" / "board.txt"
    if args.wheelhouse is not None:
        others = [w for w in given if not w.name.startswith("evterm-")]
        missing = wheelhouse.missing_pins(others, constraints)
        if missing:
            print(f"evterm release: warning: {args.wheelhouse} lacks wheels of pinned "
                  f"packages ({', '.join(missing)}); a board cannot install this release "
                  "offline", file=sys.stderr)
    else:
        others = [w for w in wheelhouse.build_dependencies(evterm[0], constraints,
                                                           scratch / "wheels")
                  if not w.name.startswith("evterm-")]
    return [evterm[0], *others]


def run_add(args: argparse.Namespace) -> int:
    try:
        parse_version(args.version)
    except ValueError as error:
        return _fail(f"--version: {error}")
    repo = _repository(args)
    try:
        if target_name(args.version) in repo.versions():
            raise BadInput(f"release {args.version} is in the repository already")
        with tempfile.TemporaryDirectory(prefix="evterm-release-") as folder:
            scratch = Path(folder)
            wheels = _release_wheels(args, scratch)
            tar = scratch / target_name(args.version)
            manifest = wheelhouse.pack_release(args.version, wheels, tar)
            signings = repo.add_target(tar, args.version)
    except wheelhouse.BuildFailed as error:
        return _fail(str(error), 1)
    except _problems() as error:
        return _fail(str(error))
    print(f"release {args.version}: {target_name(args.version)} with "
          f"{len(manifest.wheels)} wheels")
    return _report(signings)


def run_timestamp(args: argparse.Namespace) -> int:
    try:
        repo = _repository(args)
        signings = repo.refresh_timestamp_and_snapshot(args.expiry_days)
    except _problems() as error:
        return _fail(str(error))
    return _report(signings)


def run_sign(args: argparse.Namespace) -> int:
    try:
        signing = _repository(args).sign(args.role)
    except _problems() as error:
        return _fail(str(error))
    return _report([signing])


def run_renew(args: argparse.Namespace) -> int:
    try:
        signings = _repository(args).renew(args.role)
    except _problems() as error:
        return _fail(str(error))
    return _report(signings)
