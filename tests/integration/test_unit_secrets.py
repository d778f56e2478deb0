"""The units keep the secrets in /etc/evterm from the touchscreen: the UI's user is in
group evterm (for the local API socket), so its unit hides the folder outright; the
daemon creates its files for its own user alone (docs/deployment.md, "Who may do
what"). `systemd-analyze verify` of the units is in test_systemd_units."""

from __future__ import annotations

from pathlib import Path

from tests.integration.test_systemd_units import directives

UNITS = Path(__file__).resolve().parents[2] / "systemd"


def test_the_ui_unit_cannot_see_the_daemons_configuration_and_keys():
    ui = directives(UNITS / "evterm-ui.service")
    assert "evterm" in ui["SupplementaryGroups"][0].split()  # why it must be hidden
    hidden = [path for value in ui.get("InaccessiblePaths", []) for path in value.split()]
    assert "-/etc/evterm" in hidden or "/etc/evterm" in hidden, hidden


def test_the_daemon_unit_keeps_its_files_to_its_user():
    daemon = directives(UNITS / "evterm.service")
    assert daemon["UMask"] == ["0077"] and daemon["StateDirectoryMode"] == ["0700"]
    assert daemon["User"] == ["evterm"]  # the service role: root and this user
