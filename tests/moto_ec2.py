"""A real EC2 API for tests: moto's ThreadedMotoServer on 127.0.0.1, with fake credentials.

Tests pass its URL as `--endpoint-url`, exactly as a user points ccpt at LocalStack. The server
is started once per session and its state is reset before each test.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest

REGION = "us-east-1"


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def ec2_endpoint(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A freshly reset moto EC2 endpoint, with fake credentials and a region in the environment."""
    request = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10).close()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    return moto_server


def ec2_client(endpoint: str):  # type: ignore[no-untyped-def]
    """A boto3 client on the same endpoint, for arranging and checking state in tests."""
    import boto3

    return boto3.client("ec2", region_name=REGION, endpoint_url=endpoint)
