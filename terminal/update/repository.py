"""The operator's TUF repository on disk, built with python-tuf's Metadata API.

`ReleaseRepository(repo_dir, keys_dir)`:
- `init(threshold, keys_per_role, expiry)`: new keys and the first root, targets,
  snapshot and timestamp metadata;
- `add_target(tar, version)`: the release tar into targets/ and the targets, snapshot
  and timestamp metadata bumped and signed again;
- `refresh_timestamp_and_snapshot(expiry_days)`: a new timestamp, and a new snapshot when
  half of its period has passed (the operator's cron job);
- `renew(role)`: root or targets again with a fresh expiry (before it runs out);
- `sign(role)`: another key holder's signatures added to the role's current metadata
  (threshold signing without handing keys around).

Layout (consistent snapshots, as python-tuf's ngclient reads them): metadata/N.root.json
(and root.json, the copy boards are installed with), metadata/N.targets.json,
metadata/N.snapshot.json, metadata/timestamp.json, targets/<sha256>.<name>; the
unversioned targets.json and snapshot.json are the current ones, for this module.
policy.json beside them keeps the expiry periods in days.

Based on python-tuf's documentation of its Metadata API (tuf.api.metadata) and its
examples/manual_repo/basic_repo.py (read, not copied).
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from securesystemslib.exceptions import StorageError
from tuf.api.exceptions import RepositoryError
from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

from terminal.update import keys
from terminal.update.manifest import parse_version, target_name
from terminal.update.roles import DEFAULT_EXPIRY_DAYS, OFFLINE_ROLES

__all__ = ["DEFAULT_EXPIRY_DAYS", "OFFLINE_ROLES", "ReleaseRepository", "RepositoryProblem",
           "Signing", "expires_in", "report"]

SPEC_VERSION = "1.0.31"


class RepositoryProblem(ValueError):
    """The repository or the keys cannot do what was asked (message names what)."""


@dataclass(frozen=True)
class Signing:
    """How a role's metadata was signed: by how many of the keys its threshold needs."""
    role: str
    version: int
    signatures: int
    threshold: int

    @property
    def complete(self) -> bool:
        return self.signatures >= self.threshold


def expires_in(days: Decimal, now: datetime | None = None) -> datetime:
    start = (now or datetime.now(UTC)).replace(microsecond=0)
    return start + timedelta(seconds=int(days * 86400))


class ReleaseRepository:
    def __init__(self, repo_dir: Path, keys_dir: Path) -> None:
        self.repo_dir = repo_dir
        self.keys_dir = keys_dir
        self.metadata_dir = repo_dir / "metadata"
        self.targets_dir = repo_dir / "targets"
        self.policy_path = repo_dir / "policy.json"

    # ---- the policy and the metadata files -------------------------------------------
    def expiry_days(self) -> dict[str, Decimal]:
        try:
            data = json.loads(self.policy_path.read_text(encoding="utf-8"))
            return {role: Decimal(str(data["expiry_days"][role])) for role in keys.ROLES}
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise RepositoryProblem(f"{self.policy_path}: not a repository made by "
                                    f"`evterm release init` ({error})") from None

    def _load(self, role: str) -> Metadata[Any]:
        name = "timestamp.json" if role == "timestamp" else f"{role}.json"
        path = self.metadata_dir / name
        try:
            return Metadata.from_file(str(path))
        except (OSError, ValueError, StorageError, RepositoryError) as error:
            raise RepositoryProblem(f"{path}: cannot read the {role} metadata ({error}); "
                                    "run `evterm release init` first") from None

    def _write(self, role: str, metadata: Metadata[Any]) -> None:
        serializer = JSONSerializer(compact=False)
        version = metadata.signed.version
        if role == "timestamp":
            names = ["timestamp.json"]
        else:
            names = [f"{version}.{role}.json", f"{role}.json"]
        for name in names:
            temporary = self.metadata_dir / f".{name}.new"
            metadata.to_file(str(temporary), serializer)
            temporary.chmod(0o644)
            temporary.replace(self.metadata_dir / name)

    def _root(self) -> Root:
        root: Root = self._load("root").signed
        return root

    def _sign(self, role: str, metadata: Metadata[Any], root: Root, append: bool) -> Signing:
        keyids = root.roles[role].keyids
        signers = keys.signers_for(self.keys_dir, role, keyids)
        if not signers:
            raise RepositoryProblem(f"{self.keys_dir}: none of the {role} keys that root "
                                    f"trusts ({len(keyids)}) is there")
        if not append:
            metadata.signatures.clear()
        for signer in signers:
            metadata.sign(signer, append=True)
        result = root.get_verification_result(role, metadata.signed_bytes,
                                              metadata.signatures)
        return Signing(role, metadata.signed.version, len(result.signed),
                       root.roles[role].threshold)

    # ---- the operations -----------------------------------------------------------
    def init(self, threshold: int, keys_per_role: int,
             expiry_days: dict[str, Decimal]) -> list[Signing]:
        if not 1 <= threshold <= keys_per_role:
            raise RepositoryProblem(f"the threshold ({threshold}) must be between 1 and the "
                                    f"keys per role ({keys_per_role})")
        if self.metadata_dir.exists() and any(self.metadata_dir.iterdir()):
            raise RepositoryProblem(f"{self.metadata_dir} exists and is not empty: "
                                    "a repository is there already")
        taken = [role for role in keys.ROLES if keys.key_files(self.keys_dir, role)]
        if taken:
            raise RepositoryProblem(f"{self.keys_dir} holds keys already ({', '.join(taken)});"
                                    " use an empty keys folder")
        self.metadata_dir.mkdir(parents=True, exist_ok=True)
        self.targets_dir.mkdir(parents=True, exist_ok=True)
        self.policy_path.write_text(json.dumps(
            {"expiry_days": {role: str(days) for role, days in expiry_days.items()}},
            indent=2) + "\n", encoding="utf-8")
        root = Root(expires=expires_in(expiry_days["root"]), consistent_snapshot=True,
                    spec_version=SPEC_VERSION)
        for role in keys.ROLES:
            count = keys_per_role if role in OFFLINE_ROLES else 1
            for signer in keys.generate(self.keys_dir, role, count):
                root.add_key(signer.public_key, role)
            root.roles[role].threshold = threshold if role in OFFLINE_ROLES else 1
        metadata: dict[str, Metadata[Any]] = {
            "root": Metadata(root),
            "targets": Metadata(Targets(expires=expires_in(expiry_days["targets"]),
                                        spec_version=SPEC_VERSION)),
            "snapshot": Metadata(Snapshot(expires=expires_in(expiry_days["snapshot"]),
                                          spec_version=SPEC_VERSION)),
            "timestamp": Metadata(Timestamp(expires=expires_in(expiry_days["timestamp"]),
                                            spec_version=SPEC_VERSION)),
        }
        signings = [self._sign(role, metadata[role], root, append=False)
                    for role in keys.ROLES]
        for role in keys.ROLES:
            self._write(role, metadata[role])
        return signings

    def versions(self) -> dict[str, str]:
        """The releases in the targets metadata: target path -> version."""
        targets: Targets = self._load("targets").signed
        return {path: str((info.custom or {}).get("version", ""))
                for path, info in targets.targets.items()}

    def add_target(self, tar: Path, version: str) -> list[Signing]:
        parse_version(version)
        name = target_name(version)
        root = self._root()
        days = self.expiry_days()
        targets_md = self._load("targets")
        targets: Targets = targets_md.signed
        if name in targets.targets:
            raise RepositoryProblem(f"release {version} is in the repository already "
                                    "(a release is never replaced: give it a new version)")
        info = TargetFile.from_file(name, str(tar), ["sha256"])
        info.unrecognized_fields["custom"] = {"version": version}
        destination = self.targets_dir / f"{info.hashes['sha256']}.{name}"
        temporary = destination.with_name(destination.name + ".new")
        shutil.copyfile(tar, temporary)
        temporary.replace(destination)
        targets.targets[name] = info
        targets.version += 1
        targets.expires = expires_in(days["targets"])
        signings = [self._sign("targets", targets_md, root, append=False)]
        self._write("targets", targets_md)
        signings += self._snapshot_and_timestamp(root, days, targets.version)
        return signings

    def _snapshot_and_timestamp(self, root: Root, days: dict[str, Decimal],
                                targets_version: int,
                                timestamp_days: Decimal | None = None) -> list[Signing]:
        snapshot_md = self._load("snapshot")
        snapshot: Snapshot = snapshot_md.signed
        snapshot.meta["targets.json"] = MetaFile(version=targets_version)
        snapshot.version += 1
        snapshot.expires = expires_in(days["snapshot"])
        signing = self._sign("snapshot", snapshot_md, root, append=False)
        self._write("snapshot", snapshot_md)
        if timestamp_days is None:
            timestamp_days = days["timestamp"]
        return [signing, self.refresh_timestamp(timestamp_days, snapshot.version)]

    def renew(self, role: str) -> list[Signing]:
        """A new version of root or targets with a fresh expiry (nothing else changed),
        signed with the keys at hand; for targets also snapshot and timestamp."""
        if role not in OFFLINE_ROLES:
            raise RepositoryProblem(f"renew is for {' and '.join(OFFLINE_ROLES)}; the "
                                    "timestamp command renews snapshot and timestamp")
        days = self.expiry_days()
        metadata = self._load(role)
        metadata.signed.version += 1
        metadata.signed.expires = expires_in(days[role])
        root = metadata.signed if role == "root" else self._root()
        signings = [self._sign(role, metadata, root, append=False)]
        self._write(role, metadata)
        if role == "targets":
            signings += self._snapshot_and_timestamp(root, days, metadata.signed.version)
        return signings

    def refresh_timestamp_and_snapshot(self, expiry_days: Decimal | None = None
                                       ) -> list[Signing]:
        """The cron job: a new timestamp, and a new snapshot first when less than half
        of the snapshot's period is left (both keys are the online ones)."""
        days = self.expiry_days()
        snapshot: Snapshot = self._load("snapshot").signed
        left = snapshot.expires - datetime.now(UTC)
        if left < timedelta(seconds=int(days["snapshot"] * 86400 / 2)):
            targets_version = snapshot.meta["targets.json"].version
            return self._snapshot_and_timestamp(self._root(), days, targets_version,
                                                expiry_days)
        return [self.refresh_timestamp(expiry_days)]

    def refresh_timestamp(self, expiry_days: Decimal | None = None,
                          snapshot_version: int | None = None) -> Signing:
        root = self._root()
        days = self.expiry_days()["timestamp"] if expiry_days is None else expiry_days
        timestamp_md = self._load("timestamp")
        timestamp: Timestamp = timestamp_md.signed
        if snapshot_version is not None:
            timestamp.snapshot_meta = MetaFile(version=snapshot_version)
        timestamp.version += 1
        timestamp.expires = expires_in(days)
        signing = self._sign("timestamp", timestamp_md, root, append=False)
        self._write("timestamp", timestamp_md)
        return signing

    def sign(self, role: str) -> Signing:
        """Add the signatures of the role's keys in keys_dir to its current metadata."""
        if role not in OFFLINE_ROLES:
            raise RepositoryProblem(f"only {' and '.join(OFFLINE_ROLES)} are signed by more "
                                    f"than one key holder; {role} is signed when it is made")
        metadata = self._load(role)
        root = metadata.signed if role == "root" else self._root()
        signing = self._sign(role, metadata, root, append=True)
        self._write(role, metadata)
        return signing


def report(signings: list[Signing]) -> int:
    """Tell the operator how each role was signed; 0 when every threshold is met."""
    incomplete = 0
    for signing in signings:
        line = (f"{signing.role} version {signing.version}: {signing.signatures} "
                f"signature(s), threshold {signing.threshold}")
        if signing.complete:
            print(line)
        else:
            incomplete += 1
            print(f"{line} - NOT ENOUGH: boards refuse it until another key holder runs "
                  f"`evterm release sign --role {signing.role}`", file=sys.stderr)
    return 0 if incomplete == 0 else 4
