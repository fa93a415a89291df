"""Run the workflow through the slurm profile on a throwaway single-node SLURM cluster.

Checks that `snakemake --profile profiles/slurm` finishes, that every job's outputs were
written inside a SLURM job (each script logs ``slurm_job_id=<SLURM_JOB_ID>``; the ids in
the logs must be exactly the jobs SLURM ran, all COMPLETED), and that a second invocation
has nothing to do. Needs root and the Debian SLURM packages (`.ci/install_slurm.sh`);
otherwise skips with the reason. Each SLURM job starts Snakemake twice (the sbatch
wrapper, then the nested srun): 10-25 s per job on 2 cores, so the whole tiny workflow
(30 jobs) takes 6-9 min on a busy machine; narrow SLURM_TARGETS to make it cheaper.

`SLURM_WORKFLOW_DIR` (environment) points the test at another workflow directory with the
same layout; used to prove the harness before the real workflow existed.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from slurm_cluster import DEFAULT_SLURM_CONF, LocalSlurm, port_is_free, process_is_alive, skip_reason

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_SOURCE = Path(os.environ.get("SLURM_WORKFLOW_DIR", REPO))
# Targets passed to snakemake; empty means the workflow's default target (rule all).
# Three levels of the DAG (population -> train -> extract-states) through sbatch: enough to show
# that jobs, their dependencies and their logs go through SLURM, at about a minute of CI time.
# the similarity features: its states and features jobs run as one grouped SLURM job (profile)
SLURM_TARGETS: tuple[str, ...] = ("results/flipflop/similarity/vanilla-tanh-h8-000.npz",)
CONFIG_FILE = "tests/data/tiny.yaml"
# Files and folders the workflow needs at run time, relative to WORKFLOW_SOURCE;
# those absent are skipped. The package rnnuniv is imported from the venv.
WORKFLOW_PATHS = (
    "Snakefile", "workflow", "rules", "scripts", "schemas", "envs",
    "config", "configs", "config.yaml", "profiles", "report", "tests/data",
)
SNAKEMAKE_TIMEOUT_SECONDS = 15 * 60
# Written by every script, possibly after a logging prefix: "... slurm_job_id=123 host=...".
SLURM_JOB_ID_LINE = re.compile(r"(?<![\w.])slurm_job_id=(\S*)")


def _missing_workflow() -> str | None:
    for needed in (WORKFLOW_SOURCE / "Snakefile", WORKFLOW_SOURCE / CONFIG_FILE,
                   REPO / "profiles" / "slurm" / "profile.yaml"):
        if not needed.exists():
            return f"workflow not ready: {needed} missing"
    return None


def _copy_workflow(destination: Path) -> None:
    for relative in WORKFLOW_PATHS:
        source = WORKFLOW_SOURCE / relative
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", ".snakemake"))
        elif source.is_file():
            shutil.copy2(source, target)
    if WORKFLOW_SOURCE != REPO:  # always test this repository's profiles
        shutil.rmtree(destination / "profiles", ignore_errors=True)
        shutil.copytree(REPO / "profiles", destination / "profiles")


def _run_snakemake(arguments: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run snakemake with a hard timeout; on timeout kill its whole process group."""
    snakemake = Path(sys.executable).with_name("snakemake")
    command = [str(snakemake)] if snakemake.exists() else [sys.executable, "-m", "snakemake"]
    process = subprocess.Popen(command + arguments, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        output, _ = process.communicate(timeout=SNAKEMAKE_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"snakemake timed out after {SNAKEMAKE_TIMEOUT_SECONDS} s:\n{output[-5000:]}")
    except BaseException:  # e.g. Ctrl-C: snakemake runs in its own session, so stop it here
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, output)


def _local_job_logs(snakemake_output: str) -> set[str]:
    """Log files of jobs Snakemake ran locally ("localrule <name>:" blocks of its output)."""
    logs: set[str] = set()
    for block in re.split(r"\n\s*\n", snakemake_output):
        if re.search(r"^localrule \S+:$", block, re.MULTILINE):
            for line in re.findall(r"^\s+log: (.+)$", block, re.MULTILINE):
                logs.update(path.strip() for path in line.split(","))
    return logs


def _slurm_jobs(env: dict[str, str]) -> dict[str, str]:
    """{job id: state} of every job the cluster knows (it keeps them MinJobAge = 600 s)."""
    listing = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i|%T"], env=env, capture_output=True,
                             text=True, timeout=30, check=True).stdout
    return dict(line.split("|", 1) for line in listing.split())


def _diagnostics(workdir: Path) -> str:
    """The SLURM logs Snakemake kept (it keeps those of failed jobs)."""
    texts = [f"--- {path.relative_to(workdir)} ---\n{path.read_text(errors='replace')[-3000:]}"
             for path in sorted((workdir / ".snakemake" / "slurm_logs").rglob("*.log"))]
    return "\n".join(texts[-10:])


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM (a CI timeout) into an exception, so `finally` stops the cluster."""
    def handler(signum, frame):
        raise SystemExit(f"terminated by signal {signum}")
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_port_probe_sees_a_listening_socket() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert not port_is_free(port)
    assert port_is_free(port)


@pytest.mark.slurm
def test_local_cluster_runs_a_job_and_leaves_nothing_behind(tmp_path: Path) -> None:
    reason = skip_reason()
    if reason is not None:
        pytest.skip(reason)
    slurm_conf_before = os.environ.get("SLURM_CONF")
    output = tmp_path / "job.out"
    # The nested srun runs without SLURM_CONF, as in the jobstep executor: it must find
    # the configuration through the /etc/slurm/slurm.conf link.
    script = "echo slurm_job_id=$SLURM_JOB_ID; env -u SLURM_CONF srun --ntasks=1 echo step_ok"
    with _sigterm_raises(), LocalSlurm() as cluster:
        assert cluster.timings["start"] < 30
        assert os.environ["SLURM_CONF"] == str(cluster.conf_path)
        assert os.readlink(DEFAULT_SLURM_CONF) == str(cluster.conf_path)
        submitted = subprocess.run(["sbatch", "--parsable", "-o", str(output), "--wrap", script],
                                   env=cluster.env, capture_output=True, text=True, timeout=60)
        assert submitted.returncode == 0, submitted.stderr
        job_id = submitted.stdout.strip().split(";")[0]
        assert cluster.wait_for_job(job_id) == "COMPLETED", output.read_text()
        assert output.read_text().split() == [f"slurm_job_id={job_id}", "step_ok"]
        pids = cluster.daemon_pids()
        root = cluster.root
        assert sorted(pids) == ["munged", "slurmctld", "slurmd"]
    assert cluster.timings["stop"] < 60
    assert not any(process_is_alive(pid) for pid in pids.values())
    assert not os.path.lexists(DEFAULT_SLURM_CONF)
    assert os.environ.get("SLURM_CONF") == slurm_conf_before
    assert not root.exists()


@pytest.mark.slurm
def test_workflow_runs_inside_slurm_jobs(tmp_path: Path) -> None:
    reason = skip_reason() or _missing_workflow()
    if reason is not None:
        pytest.skip(reason)
    workdir = tmp_path / "workflow"
    workdir.mkdir()
    _copy_workflow(workdir)
    # Targets first: --configfile takes several values and would swallow them.
    arguments = [*SLURM_TARGETS, "--profile", "profiles/slurm", "--configfile", CONFIG_FILE]

    cluster = LocalSlurm()
    with _sigterm_raises():
        try:
            cluster.start()
            env = cluster.env
            # The jobs must find the same Python environment (snakemake, rnnuniv, torch).
            env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])
            # One BLAS/torch thread per job: the jobs share the node's few cores.
            env.setdefault("OMP_NUM_THREADS", "1")

            first = _run_snakemake(arguments, workdir, env)
            assert first.returncode == 0, f"{first.stdout[-8000:]}\n{_diagnostics(workdir)}"

            jobs = _slurm_jobs(env)
            assert jobs, "no job went through SLURM"
            assert set(jobs.values()) == {"COMPLETED"}, jobs

            local_logs = _local_job_logs(first.stdout)
            logs = sorted(path for path in (workdir / "logs").rglob("*")
                          if path.is_file() and str(path.relative_to(workdir)) not in local_logs)
            assert logs, "no log files written under logs/"
            ids_by_log = {str(log.relative_to(workdir)): SLURM_JOB_ID_LINE.findall(log.read_text(errors="replace"))
                          for log in logs}
            outside_slurm = {log: ids for log, ids in ids_by_log.items()
                             if not ids or not all(job_id.isdigit() for job_id in ids)}
            assert not outside_slurm, f"logs without a numeric slurm_job_id= (written outside SLURM?): {outside_slurm}"
            ids_in_logs = {job_id for ids in ids_by_log.values() for job_id in ids}
            # Each SLURM job wrote at least one log, and every id in the logs is one of them.
            assert ids_in_logs == set(jobs), (sorted(ids_in_logs), sorted(jobs))
            # the profile's group: the shard's states and features ran in one SLURM job
            states_ids, features_ids = (ids_by_log.get(f"logs/flipflop/{stage}/vanilla-tanh-h8-000.log")
                                        for stage in ("states", "similarity"))
            assert states_ids and states_ids == features_ids, ids_by_log

            second = _run_snakemake(arguments, workdir, env)
            assert second.returncode == 0, second.stdout[-8000:]
            assert "Nothing to be done" in second.stdout, second.stdout[-8000:]
            assert set(_slurm_jobs(env)) == set(jobs), "the second invocation submitted jobs"
        finally:
            cluster.stop()


# The commented GPU lines of profiles/slurm/profile.yaml, exactly as shipped.
GPU_LINES_COMMENTED = "# set-resources:\n#   train:\n#     gpu: 1\n"
FAKE_SBATCH = """#!/bin/sh
# Records each sbatch call (one line, its arguments) and refuses it: no cluster here.
printf '%s\\n' "$*" >> "$FAKE_SBATCH_LOG"
echo "fake sbatch: recorded" >&2
exit 1
"""


def _fake_slurm(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """PATH with a fake ``sbatch`` that records each call and refuses it, and inert SLURM tools."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    for name, body in {"sbatch": FAKE_SBATCH, "sinfo": "", "squeue": "", "sacct": "", "sacctmgr": "",
                       "sshare": "", "scontrol": "", "scancel": ""}.items():
        (fake_bin / name).write_text(body or "#!/bin/sh\nexit 0\n")
        (fake_bin / name).chmod(0o755)
    calls = tmp_path / "sbatch_calls.txt"
    env = {**os.environ, "FAKE_SBATCH_LOG": str(calls),
           "PATH": os.pathsep.join([str(fake_bin), str(Path(sys.executable).parent), os.environ["PATH"]])}
    env.pop("SLURM_CONF", None)
    return env, calls


def test_profile_gpu_lines_reach_the_submitted_sbatch_call(tmp_path: Path) -> None:
    """Uncommenting the profile's GPU lines makes each train job ask sbatch for one GPU, and no
    other job. No SLURM needed: a fake ``sbatch`` on PATH records the plugin's call and fails it."""
    workdir = tmp_path / "workflow"
    workdir.mkdir()
    _copy_workflow(workdir)
    profile = workdir / "profiles" / "slurm" / "profile.yaml"
    text = profile.read_text()
    assert GPU_LINES_COMMENTED in text, "the profile's commented GPU lines changed; update this test"
    profile.write_text(text.replace(GPU_LINES_COMMENTED, GPU_LINES_COMMENTED.replace("# ", "")))

    env, calls = _fake_slurm(tmp_path)

    # The population table locally (no profile), so the train jobs are ready to submit.
    local = _run_snakemake(["results/flipflop/population.csv", "results/cdi/population.csv", "--cores", "1",
                            "--configfile", CONFIG_FILE], workdir, env)
    assert local.returncode == 0, local.stdout[-4000:]
    (workdir / "results" / "cdi" / "population.csv").unlink()  # a non-GPU job to submit too
    targets = ["results/flipflop/shards/vanilla-tanh-h8-000/weights.safetensors", "results/cdi/population.csv"]
    run = _run_snakemake([*targets, "--profile", "profiles/slurm", "--configfile", CONFIG_FILE,
                          "--retries", "0"],
                         workdir, env)
    assert run.returncode != 0, "the fake sbatch refuses every job, so the run must fail"
    submitted = calls.read_text().splitlines() if calls.exists() else []
    train = [call for call in submitted if "rule_train" in call]
    others = [call for call in submitted if "rule_train" not in call]
    assert len(train) == 1 and len(others) == 1, (submitted, run.stdout[-4000:])
    assert re.search(r"(^|\s)--gpus=1(\s|$)", train[0]), train[0]
    assert "--gpus" not in others[0] and "--gres" not in others[0], others[0]
    # and the rule's resources at the first attempt (rules/train.smk): at 8 units, the 2000 MB and
    # 30 min floors
    assert re.search(r"--mem[= ]2000(\s|$)", train[0]) and re.search(r"-t 30(\s|$)", train[0]), train[0]


def test_profile_groups_submit_each_shard_chain_as_one_job(tmp_path: Path) -> None:
    """Through the slurm profile, a shard's states and features go to sbatch as one job, and so do
    its fixed points and topology graph: one submission per chain where ungrouped there would be
    two. No SLURM needed (fake ``sbatch``; it refuses the job, so each run ends after submitting)."""
    workdir = tmp_path / "workflow"
    workdir.mkdir()
    _copy_workflow(workdir)
    env, calls = _fake_slurm(tmp_path)
    shard = "vanilla-tanh-h8-000"

    def submitted_for(target: str) -> list[str]:
        calls.unlink(missing_ok=True)
        run = _run_snakemake([target, "--profile", "profiles/slurm", "--configfile", CONFIG_FILE,
                              "--retries", "0"], workdir, env)
        assert run.returncode != 0, "the fake sbatch refuses every job, so the run must fail"
        return calls.read_text().splitlines() if calls.exists() else []

    # made locally first: the chain's inputs, so its first job is ready to submit
    chains = [("results/flipflop/networks.csv", f"results/flipflop/similarity/{shard}.npz",
               "shard_features", ("extract_states", "similarity_features")),
              (f"results/flipflop/states/{shard}.npz", f"results/flipflop/topology/{shard}.json",
               "shard_scaffold", ("fixed_points", "topology_graph"))]
    for made_locally, target, group, rules in chains:
        local = _run_snakemake([made_locally, "--cores", "2", "--configfile", CONFIG_FILE], workdir, env)
        assert local.returncode == 0, local.stdout[-4000:]
        [call] = submitted_for(target)
        assert f"group_{group}" in call, call
        for rule in rules:
            assert f"'{rule}:task=flipflop,shard={shard}'" in call, call
