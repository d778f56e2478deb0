"""The signed software update on the board (docs/updates.md).

One job per module:
- `layout.py`: /opt/evterm (`[update] root_dir`): releases/VERSION/, the `current`
  symlink and its atomic switch;
- `journal.py`: the updater's journal (each step written before it is acted on) and the
  FirmwareStatus reports it holds for the daemon to send;
- `request.py`: an update asked for (the backend's `firmware_update`, the service CLI),
  a file the updater takes;
- `source.py`: where a release comes from (`fetch_release`, a repository URL or a folder
  on a USB stick) and what a fetch failure is reported as;
- `install.py`: a release's venv built offline from its wheels;
- `daemon_checks.py`: the daemon through its local API: idle, healthy;
- `updater.py`: the steps, resumed from the journal after a kill or a power loss;
- `relay.py`: in the daemon, the journal's reports into the outbox;
- `cli.py`: `evterm update ...`.
"""
