"""Settings, resolved in one place.

Precedence, lowest to highest: built-in defaults < `[tool.ccpt]` in the nearest
`pyproject.toml` or a `ccpt.toml` (walking up from the working directory) < `CCPT_*`
environment variables (plus the SDKs' own variables such as `ANTHROPIC_API_KEY`) < flags.
Every resolved value remembers where it came from, so `ccpt config show` can say.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ccpt.errors import CcptError

DEFAULT_MODEL = "claude-sonnet-5-5"


def _to_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def _to_str(raw: Any) -> str:
    if not isinstance(raw, str | int | float):
        raise ValueError(f"expected a string, got {type(raw).__name__}")
    return str(raw)


@dataclass(frozen=True)
class SettingSpec:
    """One setting: its name, default, how to parse it, and where else it may come from."""

    name: str
    default: Any
    parse: Callable[[Any], Any]
    help: str
    secret: bool = False
    file_allowed: bool = True
    extra_env: tuple[str, ...] = ()
    unset: str = ""  # what happens when no value is set (defaults of None only)

    @property
    def env_var(self) -> str:
        return "CCPT_" + self.name.upper()


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("model", DEFAULT_MODEL, _to_str, "Claude model used by `ccpt agent` and `ccpt ask`"),
    SettingSpec("max_tokens", 4096, int, "Upper bound on the tokens of one answer"),
    SettingSpec("timeout", 600.0, float, "Seconds before a Claude request is abandoned"),
    SettingSpec(
        "anthropic_api_key",
        None,
        _to_str,
        "Claude API key (environment only, never a file)",
        secret=True,
        file_allowed=False,
        extra_env=("ANTHROPIC_API_KEY",),
        unset="needed by `ccpt agent` and `ccpt ask`",
    ),
    SettingSpec(
        "anthropic_base_url",
        None,
        _to_str,
        "Messages API endpoint (a proxy, or a local server in tests)",
        extra_env=("ANTHROPIC_BASE_URL",),
        unset="the SDK's default endpoint",
    ),
    SettingSpec("history", True, _to_bool, "Log every consultation to the local history database"),
    SettingSpec("home", None, _to_str, "Directory for ccpt's own data (history, run records)"),
    SettingSpec("train_entry", "src/runner.py train", _to_str, "Script (and args) `ccpt train` runs"),
    SettingSpec("run_dir", "runs", _to_str, "Where `ccpt train` keeps per-run logs"),
    SettingSpec(
        "ssh_config",
        None,
        _to_str,
        "ssh client config file for multi-node launches",
        unset="ssh's own (~/.ssh/config)",
    ),
    SettingSpec(
        "region",
        None,
        _to_str,
        "AWS region for `ccpt ec2` and `--ec2-tag`",
        unset="boto3 decides (AWS_DEFAULT_REGION, ~/.aws/config)",
    ),
    SettingSpec(
        "profile", None, _to_str, "AWS profile name", unset="boto3 decides (AWS_PROFILE, else default)"
    ),
    SettingSpec("endpoint_url", None, _to_str, "AWS endpoint (LocalStack or moto)", unset="AWS itself"),
)
SPECS_BY_NAME = {spec.name: spec for spec in SETTINGS}


@dataclass(frozen=True)
class ResolvedSetting:
    name: str
    value: Any
    source: str
    secret: bool

    def display_value(self) -> str:
        """The value as it may be shown: secrets keep only their last four characters."""
        if self.value is None:
            return ""
        if self.secret:
            return mask_secret(str(self.value))
        return str(self.value)


def mask_secret(secret: str) -> str:
    return "****" + secret[-4:] if len(secret) > 8 else "****"


class Settings:
    """Resolved settings; attribute access gives values, `resolved` gives values with sources."""

    def __init__(self, resolved: dict[str, ResolvedSetting], config_file: Path | None) -> None:
        self.resolved = resolved
        self.config_file = config_file

    def __getattr__(self, name: str) -> Any:
        try:
            return self.resolved[name].value
        except KeyError:
            raise AttributeError(name) from None

    @property
    def project_root(self) -> Path | None:
        """The directory of the config file that was found, if any."""
        return self.config_file.parent if self.config_file else None

    @property
    def home_dir(self) -> Path:
        """ccpt's data directory: the `home` setting, else the platform's user data dir."""
        if self.home:
            return Path(self.home).expanduser()
        from platformdirs import user_data_dir

        return Path(user_data_dir("ccpt", appauthor=False))

    def when_unset(self, name: str) -> str:
        """What applies while setting `name` has no value ('' where nothing needs saying)."""
        return str(self.home_dir) if name == "home" else SPECS_BY_NAME[name].unset


def find_config_file(start: Path) -> tuple[Path, dict[str, Any]] | None:
    """The nearest `ccpt.toml`, or `pyproject.toml` with a `[tool.ccpt]` table, above `start`."""
    for directory in (start, *start.parents):
        ccpt_toml = directory / "ccpt.toml"
        if ccpt_toml.is_file():
            return ccpt_toml, _read_toml(ccpt_toml)
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file():
            table = _read_toml(pyproject).get("tool", {}).get("ccpt")
            if isinstance(table, dict):
                return pyproject, table
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    from ccpt import toml  # here, not at module top: `ccpt --help` never reads a config file

    try:
        return toml.loads(path.read_text(encoding="utf-8"))
    except toml.TOMLDecodeError as exc:
        raise CcptError(f"{path}: invalid TOML: {exc}", hint="fix the file or remove it") from exc
    except OSError as exc:
        raise CcptError(f"{path}: cannot read: {exc.strerror}") from exc


def _parse(spec: SettingSpec, raw: Any, origin: str) -> Any:
    try:
        return spec.parse(raw)
    except (TypeError, ValueError) as exc:
        raise CcptError(
            f"{origin}: bad value for `{spec.name}`: {exc}",
            hint=spec.help,
            exit_code=2,
        ) from exc


def resolve_settings(
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Settings:
    """Resolve every setting from defaults, the nearest config file, the environment and flags."""
    cwd = Path.cwd() if cwd is None else cwd
    env = os.environ if env is None else env
    flags = flags or {}
    found = find_config_file(cwd.resolve())
    config_file, table = found if found else (None, {})

    for key in table:
        if key not in SPECS_BY_NAME:
            known = ", ".join(SPECS_BY_NAME)
            raise CcptError(f"{config_file}: unknown setting `{key}`", hint=f"known: {known}", exit_code=2)
        if not SPECS_BY_NAME[key].file_allowed:
            raise CcptError(
                f"{config_file}: `{key}` must not be stored in a file",
                hint=f"set {SPECS_BY_NAME[key].extra_env[0]} in the environment instead",
                exit_code=2,
            )

    resolved: dict[str, ResolvedSetting] = {}
    for spec in SETTINGS:
        value, source = spec.default, "default"
        if spec.name in table:
            value = _parse(spec, table[spec.name], str(config_file))
            source = str(config_file)
        for var in (*spec.extra_env, spec.env_var):
            if env.get(var):
                value, source = _parse(spec, env[var], f"${var}"), f"env {var}"
        if flags.get(spec.name) is not None:
            value, source = _parse(spec, flags[spec.name], "flag"), "flag"
        resolved[spec.name] = ResolvedSetting(spec.name, value, source, spec.secret)
    return Settings(resolved, config_file)
