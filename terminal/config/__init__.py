"""The one configuration loader: a TOML file -> typed, frozen objects.

Each section is a frozen dataclass whose fields carry their documentation, unit,
default and allowed range (`option(...)`). The loader checks every value against that
schema, reports unknown keys (typos surface) and collects every problem into one
`ConfigError` naming the key, the bad value and what is allowed. docs/configuration.md
is generated from the same schema (`evterm config docs`), so the two cannot drift.

The modules, each with one job:
- options: the option table (the sections and `Config`), declarations only;
- schema: `option(...)`, what an option allows in words, `ConfigError`;
- checks: the named value checks the table refers to;
- loader: `load_config`, `parse_config`, `parse_config_bytes`, `DEFAULT_CONFIG_PATH`;
- warn: `config_warnings` (allowed but unsafe settings: printed by `config check`,
  logged by the daemon at start);
- check: `check_file` (what `evterm config check` does);
- reference: `render_reference` (docs/configuration.md).
"""

from terminal.config.check import check_file
from terminal.config.loader import (
    DEFAULT_CONFIG_PATH,
    load_config,
    parse_config,
    parse_config_bytes,
)
from terminal.config.options import (
    AuthConfig,
    BackendConfig,
    ChargerConfig,
    Config,
    LocalApiConfig,
    LoggingConfig,
    MeterConfig,
    PaymentConfig,
    ReadersConfig,
    ReportConfig,
    RetentionConfig,
    ServiceConfig,
    SessionConfig,
    StationConfig,
    UiConfig,
    UpdateConfig,
    ZvtConfig,
)
from terminal.config.reference import render_reference
from terminal.config.schema import ConfigError, option
from terminal.config.warn import config_warnings

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "AuthConfig",
    "BackendConfig",
    "ChargerConfig",
    "Config",
    "ConfigError",
    "LocalApiConfig",
    "LoggingConfig",
    "MeterConfig",
    "PaymentConfig",
    "ReadersConfig",
    "ReportConfig",
    "RetentionConfig",
    "ServiceConfig",
    "SessionConfig",
    "StationConfig",
    "UiConfig",
    "UpdateConfig",
    "ZvtConfig",
    "check_file",
    "config_warnings",
    "load_config",
    "option",
    "parse_config",
    "parse_config_bytes",
    "render_reference",
]
