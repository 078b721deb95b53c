"""Test configuration: offline switches, a throw-away weights cache, and the running app."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile

# Offline and quiet before anything imports gradio or torchvision: no telemetry, no version
# check, no weights download attempt (the probe would fail anyway, but not instantly everywhere).
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["GRADCAM_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TORCH_HOME", tempfile.mkdtemp(prefix="gradcam-torch-home-"))
os.environ.pop("GRADCAM_WEIGHTS", None)

import pytest  # noqa: E402

IN_CI = os.environ.get("CI", "").lower() == "true"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def running_app():
    """The real app (offline, so on untrained weights) served on localhost for the whole session."""
    from demo import build_demo, launch_options

    demo = build_demo()
    demo.queue(default_concurrency_limit=1).launch(
        prevent_thread_lock=True, server_name="127.0.0.1", server_port=_free_port(), quiet=True, **launch_options()
    )
    yield demo
    demo.close()


@pytest.fixture(scope="session")
def app_url(running_app) -> str:
    return running_app.local_url


@pytest.fixture
def client(app_url):
    from gradio_client import Client

    client = Client(app_url, verbose=False, download_files=tempfile.mkdtemp(prefix="gradcam-client-"))
    yield client
    client.close()


def require_chromium() -> str:
    """The browser test must run in CI: there a missing browser is a failure, elsewhere a skip."""
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    if IN_CI:
        pytest.fail("Debian's chromium is not installed; .ci/run should have installed it")
    pytest.skip("chromium is not installed (apt-get install -y chromium)")
