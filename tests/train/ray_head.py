"""A foreign Ray cluster for tests: ``ray start --head --block`` on loopback, in a private temp dir.

It stands for "another program's Ray" (or a user's ``ray start --head`` cluster): its own
``--temp-dir`` (so its address file, ``TEMP/ray_current_cluster``, is found by a process with
``RAY_TMPDIR=ROOT``), every port picked free on 127.0.0.1, no dashboard. It is stopped by its own
process (``--block`` shuts the node down on SIGTERM), then any process left whose command line names
its temp dir is killed -- never ``ray stop``, which would stop every Ray of this user on the machine.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

RAY = str(Path(sys.executable).with_name("ray"))
# what a test process may carry from its own Ray (ray.init sets RAY_AUTH_MODE=token in os.environ)
_RAY_CLIENT_VARS = ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_TMPDIR")


def free_ports(n: int) -> List[int]:
    """``n`` distinct TCP ports free on 127.0.0.1 right now."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _pids_naming(text: str) -> List[int]:
    """Processes of this user whose command line contains ``text``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if text.encode() in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            pass
    return pids


class RayHead:
    """``with RayHead(env=...) as head:`` -- ``head.address`` (``127.0.0.1:PORT``), ``head.root`` (use as RAY_TMPDIR).

    Args:
        num_cpus: the cluster's logical CPUs.
        env: extra environment of ``ray start`` (e.g. ``RAY_AUTH_MODE``, ``HOME``); Ray's client variables
            of this process (``RAY_ADDRESS``, ``RAY_AUTH_*``, ``RAY_TMPDIR``) are not passed on.
        start_timeout: seconds to wait for the GCS port to accept connections.
    """

    def __init__(self, num_cpus: int = 1, env: Optional[Dict[str, str]] = None, start_timeout: float = 90.0):
        self.num_cpus = num_cpus
        self.env = {k: v for k, v in os.environ.items() if k not in _RAY_CLIENT_VARS}
        self.env.update(env or {})
        self.start_timeout = start_timeout
        # short: Ray's unix socket paths (TEMP/session_.../sockets/plasma_store) must stay under 108 bytes
        self.root = Path(tempfile.mkdtemp(prefix="gtray-", dir="/tmp"))
        self.temp_dir = self.root / "ray"
        self.proc: Optional[subprocess.Popen] = None
        self.address = ""

    def __enter__(self) -> "RayHead":
        gcs, agent, agent_grpc, metrics, env_agent, node_mgr, obj_mgr = free_ports(7)
        self.address = f"127.0.0.1:{gcs}"
        cmd = [RAY, "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(gcs),
               "--num-cpus", str(self.num_cpus), "--include-dashboard", "false", "--temp-dir", str(self.temp_dir),
               "--dashboard-agent-listen-port", str(agent),
               "--dashboard-agent-grpc-port", str(agent_grpc), "--metrics-export-port", str(metrics),
               "--runtime-env-agent-port", str(env_agent), "--node-manager-port", str(node_mgr),
               "--object-manager-port", str(obj_mgr), "--disable-usage-stats"]
        self.log = open(self.root / "ray-start.log", "wb")
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + self.start_timeout
        address_file = self.temp_dir / "ray_current_cluster"
        # the file exists before it holds the address (seen empty on a loaded machine): wait for both
        while not (address_file.exists() and address_file.read_text().strip()) or not self._port_open(gcs):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"ray start --head failed: {(self.root / 'ray-start.log').read_text()[-3000:]}")
            time.sleep(0.2)
        return self

    @staticmethod
    def _port_open(port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the cluster by its own ``ray start`` process, then kill what is left of it; keep ``root``."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in _pids_naming(str(self.temp_dir)):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if getattr(self, "log", None):
            self.log.close()

    def _query(self, expr: str):
        """Evaluate ``expr`` (over ``gcs``, a GcsClient of this cluster) in a child with the head's credentials."""
        env = dict(self.env, RAY_AUTH_MODE=self.env.get("RAY_AUTH_MODE", "token"))
        code = ("import json, sys\nfrom ray._raylet import GcsClient\ngcs = GcsClient(address=sys.argv[1])\n"
                f"print(json.dumps({expr}))")
        res = subprocess.run([sys.executable, "-c", code, self.address], env=env, capture_output=True, text=True, timeout=120)
        if res.returncode != 0:
            raise RuntimeError(f"the cluster at {self.address} did not answer: {res.stderr[-2000:]}")
        return json.loads(res.stdout.strip().splitlines()[-1])

    def jobs(self) -> list:
        """The IDs of the jobs (drivers) that ever connected to this cluster."""
        return self._query("[k.hex() if hasattr(k, 'hex') else str(k) for k in gcs.get_all_job_info()]")

    def resources(self) -> Dict[str, float]:
        """Total resources of the cluster's alive nodes, as its GCS reports them (raises if it does not answer)."""
        return self._query("{k: sum(n.resources_total.get(k, 0.0) for n in gcs.get_all_node_info().values() if n.state == 0)"
                           " for n0 in gcs.get_all_node_info().values() for k in n0.resources_total}")

    def __exit__(self, *exc) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
