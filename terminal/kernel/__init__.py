"""The shared kernel: what the daemon, the drivers and the touchscreen all use and
nothing else of terminal/ (checked by tests/unit/test_import_contract.py): the one clock
(`clock`), logging setup (`logsetup`), money (`money`), card data (`cards`) and the one
card-number rule for texts (`redact`), formatting and locales (`formatting`,
`locales`), the driver texts (`driver_texts`) and installed paths (`paths`)."""
