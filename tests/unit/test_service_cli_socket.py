"""`evterm service` only needs the daemon's socket: without --socket it reads just
`[localapi] socket_path` of the config file, and a daemon it cannot reach is named with
the socket tried, where that path came from and how to pass another."""

from __future__ import annotations

import pytest

from terminal import cli, service_cli
from terminal.kernel.paths import LOCAL_API_SOCKET


def _run(capsys, *argv: str) -> tuple[int, str]:
    rc = cli.main(["service", *argv])
    return rc, capsys.readouterr().err


def test_no_config_file_names_the_default_socket_and_how_to_pass_one(
        monkeypatch, tmp_path, capsys):
    missing = tmp_path / "evterm.toml"
    monkeypatch.setattr(service_cli, "DEFAULT_CONFIG_PATH", missing)
    rc, err = _run(capsys, "--token-file", str(tmp_path / "t"), "diag")
    assert rc == 2
    assert f"cannot reach the daemon at {LOCAL_API_SOCKET}" in err
    assert f"{missing} cannot be read" in err
    assert "evterm service --socket PATH" in err
    assert "invalid configuration" not in err


def test_only_the_socket_is_read_from_a_config_the_cli_could_not_validate(
        tmp_path, capsys):
    sock = tmp_path / "daemon.sock"
    config = tmp_path / "evterm.toml"
    # the rest of this file is nothing the daemon would accept (and needs not be)
    config.write_text(f'[localapi]\nsocket_path = "{sock}"\n[meter]\nmodel = 5\n')
    rc, err = _run(capsys, "--config", str(config), "--token-file", str(tmp_path / "t"),
                   "diag")
    assert rc == 2
    assert f"cannot reach the daemon at {sock} (from localapi.socket_path in {config})" in err
    assert "meter.model" not in err


@pytest.mark.parametrize("content, expected", [
    (None, "cannot read it"),
    (b"[localapi\n", "not a TOML file"),
    (b'[localapi]\nsocket_path = 5\n', "localapi.socket_path = 5: expected a path"),
])
def test_a_named_config_that_gives_no_socket_is_said_so(tmp_path, capsys, content, expected):
    config = tmp_path / "evterm.toml"
    if content is not None:
        config.write_bytes(content)
    rc, err = _run(capsys, "--config", str(config), "diag")
    assert rc == 2
    assert expected in err and "--socket PATH" in err


def test_socket_path_prefers_the_option():
    args = cli.build_parser().parse_args(["service", "--socket", "/x.sock", "diag"])
    assert service_cli.socket_path(args) == ("/x.sock", "--socket")
