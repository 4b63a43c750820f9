"""The default sidecar preStop loop ends once the application stops listening.

The loop runs in the istio-proxy container, which shares the pod's network namespace: netstat
there lists the sidecar's listeners (envoy's and pilot-agent's) and the application's. Here a
stand-in netstat prints such a table, as in a 1.23 sidecar: the application's socket shows no
program name, because its process belongs to another container and user.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from constructs.workspace_config import Proxy

SIDECAR = """\
Active Internet connections (only servers)
Proto Recv-Q Send-Q Local Address           Foreign Address         State       PID/Program name
tcp        0      0 127.0.0.1:15000         0.0.0.0:*               LISTEN      20/envoy
tcp        0      0 0.0.0.0:15001           0.0.0.0:*               LISTEN      20/envoy
tcp        0      0 127.0.0.1:15004         0.0.0.0:*               LISTEN      1/pilot-agent
tcp        0      0 0.0.0.0:15006           0.0.0.0:*               LISTEN      20/envoy
tcp        0      0 0.0.0.0:15021           0.0.0.0:*               LISTEN      20/envoy
tcp        0      0 0.0.0.0:15090           0.0.0.0:*               LISTEN      20/envoy
tcp6       0      0 :::15020                :::*                    LISTEN      1/pilot-agent
"""
APPLICATION = "tcp6       0      0 :::8080                 :::*                    LISTEN      -\n"
# The blog's loop, kept here to show why the default is no longer it.
BLOG = (
    "while [ $(netstat -plunt | grep tcp | grep -v envoy | wc -l | xargs) -ne 0 ]; do sleep 1; done"
)


def run_loop(tmp_path: Path, script: str, listeners: str | None) -> bool:
    """True if the loop returned within 3 s; `listeners` None: no netstat in the image."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if listeners is not None:
        (tmp_path / "listeners").write_text(listeners)
        netstat = bin_dir / "netstat"
        netstat.write_text(f"#!/bin/sh\ncat '{tmp_path / 'listeners'}'\n")
        netstat.chmod(0o755)
    for tool in ("grep", "wc", "xargs", "echo", "sleep", "cat"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    try:
        subprocess.run(
            ["/bin/sh", "-c", script], env={"PATH": str(bin_dir)}, timeout=3, check=False
        )
    except subprocess.TimeoutExpired:
        return False
    return True


def default_script() -> str:
    command = Proxy().pre_stop_command
    assert command is not None and command[:2] == ["/bin/sh", "-c"]
    return command[2]


@pytest.mark.parametrize(
    ("listeners", "ends"),
    [(SIDECAR + APPLICATION, False), (SIDECAR, True), (None, True)],
    ids=["application-listening", "application-gone", "no-netstat"],
)
def test_the_default_pre_stop_waits_only_for_the_application(
    tmp_path: Path, listeners: str | None, ends: bool
) -> None:
    assert run_loop(tmp_path, default_script(), listeners) is ends


def test_the_blogs_pre_stop_never_ends_on_a_sidecar_with_pilot_agent(tmp_path: Path) -> None:
    # pilot-agent's own listeners are not "envoy": the count stays at 2 with the app long gone.
    assert run_loop(tmp_path, BLOG, SIDECAR) is False
