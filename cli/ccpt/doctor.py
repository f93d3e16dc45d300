"""`ccpt doctor`: what this machine offers ccpt, as a list of checks (no printing here)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
import shutil
import sys
from dataclasses import asdict, dataclass
from typing import Literal

from ccpt import __version__
from ccpt.config import Settings, mask_secret

Status = Literal["OK", "WARN", "MISSING"]


@dataclass(frozen=True)
class Check:
    """One finding: what was looked at, what was seen, and how to fix it if it is not OK."""

    name: str
    status: Status
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def _installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_python() -> Check:
    version = platform.python_version()
    return Check("python", "OK", f"{version} at {sys.executable}")


def check_ccpt() -> Check:
    return Check("ccpt", "OK", __version__)


def check_torch() -> list[Check]:
    """torch itself, then CUDA, GPUs, NCCL and bf16 support when torch is importable."""
    if importlib.util.find_spec("torch") is None:
        return [
            Check(
                "torch",
                "MISSING",
                "not installed",
                "pip install 'ccpt[ml]' (on a CPU-only machine: pip install torch==2.13.0 first)",
            )
        ]
    import torch

    checks = [Check("torch", "OK", torch.__version__)]
    if not torch.cuda.is_available():
        checks.append(
            Check(
                "cuda",
                "WARN",
                "no CUDA device: training runs on the CPU",
                "install a CUDA build of torch on a GPU host",
            )
        )
        return checks
    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    checks.append(Check("cuda", "OK", f"CUDA {torch.version.cuda}, {len(names)} GPU(s): {', '.join(names)}"))
    nccl = torch.cuda.nccl.version() if hasattr(torch.cuda, "nccl") else None
    nccl_text = ".".join(map(str, nccl)) if isinstance(nccl, tuple) else str(nccl)
    checks.append(Check("nccl", "OK" if nccl else "WARN", nccl_text if nccl else "not available"))
    bf16 = torch.cuda.is_bf16_supported()
    checks.append(
        Check(
            "bf16", "OK" if bf16 else "WARN", "supported" if bf16 else "not supported: fp16 or fp32 is used"
        )
    )
    return checks


def check_library(distribution: str, fix: str) -> Check:
    version = _installed_version(distribution)
    if version is None:
        return Check(distribution, "MISSING", "not installed", fix)
    return Check(distribution, "OK", version)


def check_anthropic(settings: Settings) -> list[Check]:
    key = settings.anthropic_api_key
    key_check = (
        Check("anthropic key", "OK", f"ANTHROPIC_API_KEY {mask_secret(key)}")
        if key
        else Check(
            "anthropic key",
            "MISSING",
            "ANTHROPIC_API_KEY is not set",
            "export ANTHROPIC_API_KEY=... (needed by `ccpt agent` and `ccpt ask`)",
        )
    )
    base = settings.anthropic_base_url or "https://api.anthropic.com (SDK default)"
    return [key_check, Check("anthropic endpoint", "OK", base)]


def check_aws(settings: Settings) -> Check:
    """Whether boto3 can resolve credentials; reports the method, profile and region only."""
    if importlib.util.find_spec("boto3") is None:
        return Check("aws", "MISSING", "boto3 not installed", "pip install boto3")
    import boto3
    from botocore.exceptions import BotoCoreError

    try:  # a profile named in AWS_PROFILE that no config file has fails already here
        session = boto3.Session(profile_name=settings.profile) if settings.profile else boto3.Session()
        credentials = session.get_credentials()
    except BotoCoreError as exc:  # profile and config errors: all mean "not resolvable"
        return Check("aws", "WARN", f"credentials not resolvable: {exc}", "aws configure, or set AWS_PROFILE")
    region = settings.region or session.region_name or "no region"
    profile = session.profile_name or "default"
    if credentials is None:
        return Check(
            "aws",
            "WARN",
            f"no credentials (profile {profile}, {region})",
            "aws configure, or set AWS_PROFILE (needed by `ccpt ec2` only)",
        )
    return Check("aws", "OK", f"credentials via {credentials.method} (profile {profile}, {region})")


def check_binary(name: str, fix: str) -> Check:
    path = shutil.which(name)
    return Check(name, "OK", path) if path else Check(name, "MISSING", "not on PATH", fix)


def run_checks(settings: Settings) -> list[Check]:
    """Every check, in the order the table shows them."""
    return [
        check_python(),
        check_ccpt(),
        *check_torch(),
        check_library("transformers", "pip install 'ccpt[ml]'"),
        check_library("datasets", "pip install 'ccpt[ml]'"),
        *check_anthropic(settings),
        check_aws(settings),
        check_binary("ssh", "apt-get install openssh-client (needed for multi-node `ccpt train`)"),
        check_binary("rsync", "apt-get install rsync (needed for `ccpt train --sync`)"),
        check_binary("git", "apt-get install git (needed by `ccpt new` and `ccpt update`)"),
    ]
