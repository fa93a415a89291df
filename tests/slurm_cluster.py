"""A throwaway single-node SLURM cluster on localhost, for testing the slurm profile.

Usage::

    reason = skip_reason()
    if reason is None:
        with LocalSlurm() as cluster:
            subprocess.run(["sbatch", "--wrap", "hostname"], env=cluster.env, check=True)

`LocalSlurm` builds everything in a private temporary directory: a fresh munge key and a
munged on a private socket, a slurm.conf (one node, one partition ``debug``, no accounting),
then starts slurmctld and slurmd and polls each until it answers. It exports ``SLURM_CONF``
and symlinks ``/etc/slurm/slurm.conf`` to its configuration, because the jobstep executor
strips ``SLURM_*`` variables before the nested ``srun``, which then only finds the default
path. On exit it cancels the remaining jobs, stops each daemon through its PID file
(SIGTERM, then SIGKILL after a timeout), removes the symlink, the directory and the
environment variables it set. Every external call has a hard timeout.

Needs root (slurmd runs jobs as root here), the Debian packages ``slurmctld slurmd
slurm-client munge`` (see ``.ci/install_slurm.sh``) and free ports 6817/6818.

If the test process is killed with SIGKILL, nothing can clean up; stop the leftovers by
hand: ``kill $(cat /tmp/localslurm-*/run/*.pid); rm /etc/slurm/slurm.conf``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

SLURMCTLD_PORT = 6817
SLURMD_PORT = 6818
DEFAULT_SLURM_CONF = Path("/etc/slurm/slurm.conf")
PARTITION = "debug"
# Marker in the name of the private directory; a dangling /etc/slurm/slurm.conf symlink
# into such a directory is the leftover of a killed run and may be removed.
TEMP_PREFIX = "localslurm-"
# Environment variable carried by every daemon we start, so that stray processes of this
# cluster (slurmstepd) can be recognised without matching on names.
MARKER_VARIABLE = "LOCALSLURM_INSTANCE"

# Daemons live in sbin, which a non-root PATH often lacks.
_SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/local/sbin"])
REQUIRED_BINARIES = (
    "mungekey", "munged", "munge",
    "slurmctld", "slurmd",
    "sbatch", "squeue", "scontrol", "sinfo", "scancel", "srun",
)


class LocalSlurmError(RuntimeError):
    """The local cluster failed to start or to stop."""


def _which(binary: str) -> str | None:
    return shutil.which(binary, path=_SEARCH_PATH)


def port_is_free(port: int) -> bool:
    """True when nothing listens on ``port`` (TIME_WAIT leftovers do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def _is_stale_link(path: Path) -> bool:
    """True for a dangling symlink left at ``path`` by a killed LocalSlurm."""
    return path.is_symlink() and TEMP_PREFIX in os.readlink(path) and not path.exists()


def skip_reason() -> str | None:
    """Why a LocalSlurm cannot run on this machine, or None when it can."""
    if not hasattr(os, "geteuid") or not Path("/proc").is_dir():
        return "local SLURM cluster needs Linux"
    if os.geteuid() != 0:
        return "local SLURM cluster needs root (slurmd runs the jobs; the config goes to /etc/slurm)"
    missing = [binary for binary in REQUIRED_BINARIES if _which(binary) is None]
    if missing:
        return (f"SLURM/munge binaries not found: {', '.join(missing)} "
                "(install with .ci/install_slurm.sh)")
    busy = [str(port) for port in (SLURMCTLD_PORT, SLURMD_PORT) if not port_is_free(port)]
    if busy:
        return f"port(s) {', '.join(busy)} busy: another slurmctld/slurmd is running"
    if (DEFAULT_SLURM_CONF.exists() or DEFAULT_SLURM_CONF.is_symlink()) and not _is_stale_link(
            DEFAULT_SLURM_CONF):
        return f"{DEFAULT_SLURM_CONF} already exists; refusing to replace a real SLURM configuration"
    return None


def _node_resources() -> tuple[int, int]:
    """(CPUs, RealMemory in MiB) of this machine as slurmd sees them, less 1 GiB of memory."""
    probe = subprocess.run([_which("slurmd") or "slurmd", "-C"], capture_output=True, text=True,
                           timeout=30, check=True, stdin=subprocess.DEVNULL)
    cpus = int(re.search(r"\bCPUs=(\d+)", probe.stdout).group(1))
    memory_mib = int(re.search(r"\bRealMemory=(\d+)", probe.stdout).group(1))
    return cpus, max(memory_mib - 1024, 512)


def _process_state(pid: int) -> str | None:
    """The one-letter state of process ``pid`` from /proc, or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name in parentheses may contain spaces; the state follows the last ')'.
    return stat.rsplit(")", 1)[1].split()[0]


def process_is_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie awaiting its reaper counts as gone)."""
    state = _process_state(pid)
    return state is not None and state not in ("Z", "X")


def _command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


class LocalSlurm:
    """A single-node SLURM (munged + slurmctld + slurmd) in a private temporary directory.

    Use as a context manager, or call `start` and `stop`. After `start`, `env` is a copy of
    the environment with ``SLURM_CONF`` set (also exported into ``os.environ`` until `stop`),
    `partition` is the partition name, and `timings` holds the seconds spent starting and
    stopping.
    """

    def __init__(self, *, start_timeout: float = 60.0, stop_timeout: float = 30.0,
                 base_dir: str | os.PathLike | None = None) -> None:
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._base_dir = base_dir
        self.root: Path | None = None
        self.partition = PARTITION
        self.timings: dict[str, float] = {}
        self._started_pid_files: list[tuple[str, Path]] = []
        self._linked_default_conf = False
        self._created_etc_slurm = False
        self._previous_slurm_conf: str | None = None
        self._exported = False
        self.hostname = socket.gethostname().split(".")[0]

    # ----------------------------------------------------------------------------- paths
    @property
    def conf_path(self) -> Path:
        return self.root / "etc" / "slurm.conf"

    @property
    def munge_socket(self) -> Path:
        return self.root / "munge" / "munge.socket"

    @property
    def env(self) -> dict[str, str]:
        """Environment for client commands (sbatch, squeue, snakemake) of this cluster."""
        environment = dict(os.environ)
        environment["PATH"] = _SEARCH_PATH
        if self.root is not None:
            environment["SLURM_CONF"] = str(self.conf_path)
        return environment

    # ------------------------------------------------------------------ context manager
    def __enter__(self) -> "LocalSlurm":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    # ---------------------------------------------------------------------------- start
    def start(self) -> "LocalSlurm":
        """Write the configuration and start munged, slurmctld, slurmd; wait until idle."""
        reason = skip_reason()
        if reason is not None:
            raise LocalSlurmError(reason)
        began = time.monotonic()
        self.root = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=self._base_dir))
        try:
            self._write_files()
            self._link_default_conf()
            self._export_environment()
            self._start_munged()
            self._start_daemon("slurmctld", self.root / "run" / "slurmctld.pid")
            self._wait_for("slurmctld to answer", self._controller_is_up)
            self._start_daemon("slurmd", self.root / "run" / "slurmd.pid")
            self._wait_for("node to become idle", self._node_is_idle)
        except BaseException:
            with contextlib.suppress(LocalSlurmError):  # the start failure is the news
                self.stop()
            raise
        self.timings["start"] = time.monotonic() - began
        return self

    def _write_files(self) -> None:
        root = self.root
        # munged refuses group/other-writable directories; clients need to traverse them.
        os.chmod(root, 0o755)
        for sub in ("etc", "munge", "run", "log", "state", "spool"):
            (root / sub).mkdir(mode=0o755)
        cpus, memory_mib = _node_resources()
        (root / "etc" / "plugstack.conf").write_text("")
        self.conf_path.write_text("\n".join([
            "# Throwaway single-node cluster written by tests/slurm_cluster.py",
            "ClusterName=localslurm",
            f"SlurmctldHost={self.hostname}(127.0.0.1)",
            f"SlurmctldPort={SLURMCTLD_PORT}",
            f"SlurmdPort={SLURMD_PORT}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            f"StateSaveLocation={root / 'state'}",
            f"SlurmdSpoolDir={root / 'spool'}",
            f"SlurmctldPidFile={root / 'run' / 'slurmctld.pid'}",
            f"SlurmdPidFile={root / 'run' / 'slurmd.pid'}",
            f"SlurmctldLogFile={root / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={root / 'log' / 'slurmd.log'}",
            f"PlugStackConfig={root / 'etc' / 'plugstack.conf'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/affinity",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "ReturnToService=2",
            # squeue must still list finished jobs when the slurm executor polls them:
            # MinJobAge >= 3 x slurm-init-seconds-before-status-checks, else it falls
            # back to sacct, which has no data without accounting, and hangs.
            "MinJobAge=600",
            "KillWait=5",
            "InactiveLimit=0",
            "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none",
            "JobCompType=jobcomp/none",
            "MpiDefault=none",
            f"NodeName={self.hostname} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mib} "
            "State=UNKNOWN",
            f"PartitionName={PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
            "",
        ]))

    def _link_default_conf(self) -> None:
        etc_slurm = DEFAULT_SLURM_CONF.parent
        if _is_stale_link(DEFAULT_SLURM_CONF):
            DEFAULT_SLURM_CONF.unlink()
        if not etc_slurm.is_dir():
            etc_slurm.mkdir(parents=True)
            self._created_etc_slurm = True
        DEFAULT_SLURM_CONF.symlink_to(self.conf_path)
        self._linked_default_conf = True

    def _export_environment(self) -> None:
        self._previous_slurm_conf = os.environ.get("SLURM_CONF")
        os.environ["SLURM_CONF"] = str(self.conf_path)
        self._exported = True

    def _daemon_env(self) -> dict[str, str]:
        environment = self.env
        environment[MARKER_VARIABLE] = str(self.root)
        return environment

    def _launch(self, name: str, command: list[str]) -> None:
        """Run a self-daemonising command; its output goes to a file, never to a pipe
        (a pipe inherited by the daemon would keep the call waiting for EOF forever)."""
        launch_log = self.root / "log" / f"{name}.launch.log"
        with open(launch_log, "ab") as output:
            completed = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=output,
                                       stderr=subprocess.STDOUT, env=self._daemon_env(),
                                       timeout=30, start_new_session=True)
        if completed.returncode != 0:
            raise LocalSlurmError(f"{name} failed to start (exit {completed.returncode}):\n"
                                  + self._tail(launch_log) + self._tail(self.root / "log" / f"{name}.log"))

    def _start_munged(self) -> None:
        key = self.root / "munge" / "munge.key"
        subprocess.run([_which("mungekey"), "--create", f"--keyfile={key}"], check=True,
                       capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
        os.chmod(key, 0o600)
        pid_file = self.root / "run" / "munged.pid"
        self._started_pid_files.append(("munged", pid_file))
        self._launch("munged", [
            _which("munged"), "--force", f"--key-file={key}", f"--socket={self.munge_socket}",
            f"--pid-file={pid_file}", f"--log-file={self.root / 'log' / 'munged.log'}",
            f"--seed-file={self.root / 'munge' / 'munged.seed'}",
        ])
        self._wait_for("munged to answer", lambda: self._run_quiet(
            [_which("munge"), "-S", str(self.munge_socket), "-n"]) == 0)

    def _start_daemon(self, name: str, pid_file: Path) -> None:
        self._started_pid_files.append((name, pid_file))
        self._launch(name, [_which(name), "-f", str(self.conf_path)])
        self._wait_for(f"{name} to write its PID file", lambda: self._pid_from(pid_file) is not None)

    # --------------------------------------------------------------------------- probes
    def _run_quiet(self, command: list[str], timeout: float = 10.0) -> int:
        try:
            return subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, env=self.env, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            return -1

    def _output(self, command: list[str], timeout: float = 10.0) -> str:
        try:
            completed = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True,
                                       text=True, env=self.env, timeout=timeout)
        except subprocess.TimeoutExpired:
            return ""
        return completed.stdout if completed.returncode == 0 else ""

    def _controller_is_up(self) -> bool:
        return "is UP" in self._output([_which("scontrol"), "ping"])

    def _node_is_idle(self) -> bool:
        return self._output([_which("sinfo"), "-h", "-N", "-o", "%t"]).strip() == "idle"

    def _wait_for(self, what: str, ready, poll_seconds: float = 0.1) -> None:
        deadline = time.monotonic() + self.start_timeout
        while not ready():
            for name, pid_file in self._started_pid_files:
                pid = self._pid_from(pid_file)
                if pid is not None and not process_is_alive(pid):
                    raise LocalSlurmError(f"{name} died while waiting for {what}:\n"
                                          + self._tail(self.root / "log" / f"{name}.log"))
            if time.monotonic() > deadline:
                raise LocalSlurmError(f"timed out after {self.start_timeout:.0f} s waiting for {what}:\n"
                                      + "".join(self._tail(self.root / "log" / f"{name}.log")
                                                for name, _ in self._started_pid_files))
            time.sleep(poll_seconds)

    @staticmethod
    def _pid_from(pid_file: Path) -> int | None:
        try:
            text = pid_file.read_text().strip()
        except FileNotFoundError:
            return None
        return int(text) if text.isdigit() else None

    @staticmethod
    def _tail(path: Path, lines: int = 20) -> str:
        try:
            return f"--- {path.name} ---\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) + "\n"
        except OSError:
            return ""

    def wait_for_job(self, job_id: str, timeout: float = 120.0) -> str:
        """Poll squeue until job ``job_id`` leaves the pending/running states; its final state.

        Faster than ``sbatch --wait``, which polls every 10 s.
        """
        final_states = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL",
                        "BOOT_FAIL", "DEADLINE", "PREEMPTED"}
        deadline = time.monotonic() + timeout
        while True:
            state = self._output([_which("squeue"), "-h", "-t", "all", "-j", str(job_id), "-o", "%T"]).strip()
            if state in final_states:
                return state
            if time.monotonic() > deadline:
                raise LocalSlurmError(f"job {job_id} still {state or 'unknown'} after {timeout:.0f} s")
            time.sleep(0.2)

    def daemon_pids(self) -> dict[str, int]:
        """{daemon name: pid} of the running daemons, read from their PID files."""
        pids = {name: self._pid_from(pid_file) for name, pid_file in self._started_pid_files}
        return {name: pid for name, pid in pids.items() if pid is not None}

    # ----------------------------------------------------------------------------- stop
    def stop(self) -> None:
        """Cancel jobs, stop the daemons by PID file, undo every change. Idempotent."""
        if self.root is None:
            return
        began = time.monotonic()
        errors: list[str] = []
        try:
            if any(name == "slurmctld" for name, _ in self._started_pid_files):
                self._cancel_all_jobs()
            # slurmd before slurmctld (no node-down churn), munged last (both need it).
            for name, pid_file in sorted(self._started_pid_files,
                                         key=lambda item: ("slurmd", "slurmctld", "munged").index(item[0])):
                error = self._terminate_by_pid_file(name, pid_file)
                if error:
                    errors.append(error)
            for pid in self._marked_processes():
                # A slurmstepd (or job) of this cluster that outlived slurmd.
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        finally:
            self._started_pid_files.clear()
            if self._linked_default_conf:
                if DEFAULT_SLURM_CONF.is_symlink() and os.readlink(DEFAULT_SLURM_CONF) == str(self.conf_path):
                    DEFAULT_SLURM_CONF.unlink()
                self._linked_default_conf = False
            if self._created_etc_slurm:
                try:
                    DEFAULT_SLURM_CONF.parent.rmdir()
                except OSError:
                    pass
                self._created_etc_slurm = False
            if self._exported:
                if self._previous_slurm_conf is None:
                    os.environ.pop("SLURM_CONF", None)
                else:
                    os.environ["SLURM_CONF"] = self._previous_slurm_conf
                self._exported = False
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
            self.timings["stop"] = time.monotonic() - began
        if errors:
            raise LocalSlurmError("; ".join(errors))

    def _cancel_all_jobs(self) -> None:
        listing = self._output([_which("squeue"), "-h", "-o", "%i"])  # pending and running only
        active = listing.split()
        if not active:
            return
        self._run_quiet([_which("scancel"), *active])
        deadline = time.monotonic() + self.stop_timeout
        while time.monotonic() < deadline:
            if not self._output([_which("squeue"), "-h", "-o", "%i"]).strip():
                return
            time.sleep(0.2)

    def _terminate_by_pid_file(self, name: str, pid_file: Path) -> str | None:
        """SIGTERM the process named in ``pid_file``, SIGKILL it after stop_timeout."""
        pid = self._pid_from(pid_file)
        if pid is None or not process_is_alive(pid):
            return None
        if _command_name(pid) != name:
            return f"{pid_file} names pid {pid} ({_command_name(pid)!r}), not {name}; left alone"
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while process_is_alive(pid):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                kill_deadline = time.monotonic() + 5
                while process_is_alive(pid) and time.monotonic() < kill_deadline:
                    time.sleep(0.05)
                return None if not process_is_alive(pid) else f"{name} (pid {pid}) survived SIGKILL"
            time.sleep(0.05)
        return None

    def _marked_processes(self) -> list[int]:
        """Live processes whose environment carries this instance's marker."""
        marker = f"{MARKER_VARIABLE}={self.root}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                environment = (entry / "environ").read_bytes()
            except OSError:
                continue
            if marker in environment.split(b"\0") and process_is_alive(int(entry.name)):
                found.append(int(entry.name))
        return found
