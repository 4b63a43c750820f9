"""Synth speed benchmark: this app's fast path against a plain-import baseline, side by side.

Every measurement is a whole synth in a child process, so the figures keep meaning the same thing
as constructs are added. The variants run alternately in each repetition (the order reversed
every other repetition, so neither side always goes first) in one temporary copy of the project:

  fast         `python main.py`, the app as shipped (constructs/provider_modules.py fast path)
  plain        the same main.py with ISTIO_CDKTF_PLAIN_IMPORTS=1: the provider packages are
               imported the plain way (package __init__, every resource module), exactly what a
               plain cdktf app pays; same stacks, same bytes (tests/test_provider_modules.py)
  cli fast     `cdktf synth` end to end with the app as shipped
  cli plain    `cdktf synth` end to end with the plain-import baseline
  fast +1 ws   `python main.py` with one more workspace (config/qa.yaml, a copy of staging)
  fast +1 sail `python main.py` with one Sail Operator workspace more (tests/data/sail-1.30.3.yaml)
  fast +2 sail the same with two: the second shows what each further Sail workspace costs, the
               first what a synth pays once for the engine (the CRD schema, jsonschema)

Before the repetitions, `fast` and `plain` each run once on an empty jsii package cache
(JSII_RUNTIME_PACKAGE_CACHE_ROOT pointed at a new directory), and one untimed warm-up of each
variant fills the caches the timed runs use.

Usage: python bench/synth.py [--repeat N] [--check] [--update-readme]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
README = ROOT / "README.md"
PYTHON = ROOT / ".venv" / "bin" / "python"
CDKTF_CLI = ROOT / "node_modules" / ".bin" / "cdktf"

# The switch in constructs/provider_modules.py (PLAIN_IMPORTS_ENV). Not imported from there:
# importing anything under `constructs` starts a jsii node process inside the benchmark itself.
PLAIN_IMPORTS_ENV = "ISTIO_CDKTF_PLAIN_IMPORTS"
JSII_CACHE_ENV = "JSII_RUNTIME_PACKAGE_CACHE_ROOT"

# Targets of issue 6.
MAX_FAST_TO_PLAIN_RATIO = 0.40
MAX_MS_PER_EXTRA_WORKSPACE = 100.0

EXTRA_WORKSPACE = "qa"
SAIL_WORKSPACE_SOURCE = ROOT / "tests" / "data" / "sail-1.30.3.yaml"
SAIL_WORKSPACES = ("sail-a", "sail-b")
README_START = "<!-- bench:start -->"
README_END = "<!-- bench:end -->"


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    plain_imports: bool
    via_cli: bool
    extra_workspace: bool = False
    sail_workspaces: int = 0  # how many of SAIL_WORKSPACES the project copy has


FAST = Variant("fast", "python main.py (fast path)", plain_imports=False, via_cli=False)
PLAIN = Variant("plain", "python main.py (plain imports)", plain_imports=True, via_cli=False)
CLI_FAST = Variant("cli_fast", "cdktf synth (fast path)", plain_imports=False, via_cli=True)
CLI_PLAIN = Variant("cli_plain", "cdktf synth (plain imports)", plain_imports=True, via_cli=True)
FAST_EXTRA = Variant(
    "fast_extra_ws",
    "python main.py (fast path), +1 workspace",
    plain_imports=False,
    via_cli=False,
    extra_workspace=True,
)
FAST_SAIL_1 = Variant(
    "fast_sail_1",
    "python main.py (fast path), +1 Sail workspace",
    plain_imports=False,
    via_cli=False,
    sail_workspaces=1,
)
FAST_SAIL_2 = Variant(
    "fast_sail_2",
    "python main.py (fast path), +2 Sail workspaces",
    plain_imports=False,
    via_cli=False,
    sail_workspaces=2,
)
# Neighbours are compared pairwise: plain|fast|fast+1 sit side by side, fast+1 Sail|+2 Sail too,
# as do the two CLI runs.
ROUND = (PLAIN, FAST, FAST_EXTRA, FAST_SAIL_1, FAST_SAIL_2, CLI_PLAIN, CLI_FAST)


@dataclass(frozen=True)
class Sample:
    seconds: float
    cpu_seconds: float  # user + system, the child and every process it waited for
    max_rss_mib: float  # the largest single process of the run (python or its jsii node kernel)


@dataclass(frozen=True)
class Projects:
    base: Path  # the shipped workspaces
    extra: Path  # the same plus config/qa.yaml
    sail: tuple[Path, Path]  # the same as base plus one, and plus two, Sail workspaces
    workspaces: tuple[str, ...]

    def of(self, variant: Variant) -> Path:
        if variant.sail_workspaces:
            return self.sail[variant.sail_workspaces - 1]
        return self.extra if variant.extra_workspace else self.base


class BenchError(Exception):
    """A synth failed or wrote the wrong stacks: its timings would mean nothing."""


# --- Running one synth -------------------------------------------------------------------------
def child_env(plain_imports: bool, jsii_cache: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    # The same quiet settings as the Makefile, for every child process.
    env.update(
        JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
        CHECKPOINT_DISABLE="1",
        DISABLE_VERSION_CHECK="true",
    )
    for inherited in (PLAIN_IMPORTS_ENV, "CDKTF_OUTDIR", "ISTIO_KUBECONFIG", "ISTIO_KUBE_CONTEXT"):
        env.pop(inherited, None)
    # Terraform complains on every call about a missing config file (the Makefile does the same).
    if not Path(env.get("TF_CLI_CONFIG_FILE", "/")).is_file():
        env.pop("TF_CLI_CONFIG_FILE", None)
    if plain_imports:
        env[PLAIN_IMPORTS_ENV] = "1"
    if jsii_cache is not None:
        env[JSII_CACHE_ENV] = str(jsii_cache)
    return env


def run_synth(
    variant: Variant, projects: Projects, scratch: Path, jsii_cache: Path | None = None
) -> Sample:
    project = projects.of(variant)
    outdir = Path(tempfile.mkdtemp(prefix="out-", dir=scratch)) / "cdktf.out"
    env = child_env(variant.plain_imports, jsii_cache)
    if variant.via_cli:
        argv = [str(CDKTF_CLI), "synth", "--output", str(outdir)]
    else:
        argv = [str(PYTHON), "main.py"]
        env["CDKTF_OUTDIR"] = str(outdir)
    with tempfile.TemporaryFile(dir=scratch) as log:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=project, env=env, stdout=log, stderr=log)
        # wait4 rather than proc.wait(): it also returns this child's own resource usage.
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            log.seek(0)
            tail = log.read().decode(errors="replace")[-3000:]
            raise BenchError(f"{variant.label} exited with {proc.returncode}:\n{tail}")
    expected = [
        *projects.workspaces,
        *([EXTRA_WORKSPACE] if variant.extra_workspace else []),
        *SAIL_WORKSPACES[: variant.sail_workspaces],
    ]
    check_stacks(outdir, sorted(expected), variant)
    shutil.rmtree(outdir.parent)
    return Sample(
        seconds=seconds,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        max_rss_mib=usage.ru_maxrss / 1024,  # KiB on Linux
    )


def check_stacks(outdir: Path, expected: list[str], variant: Variant) -> None:
    manifest = json.loads((outdir / "manifest.json").read_text(encoding="utf-8"))
    stacks = sorted(manifest["stacks"])
    if stacks != expected:
        raise BenchError(f"{variant.label} synthesized {stacks}, expected {expected}")


# --- The project copies --------------------------------------------------------------------------
def make_projects(scratch: Path) -> Projects:
    """Copies of the project sources, one per set of workspaces, sharing .venv and node_modules."""
    ignore = shutil.ignore_patterns(
        ".venv", "node_modules", "cdktf.out*", "state", ".git", "__pycache__", ".*_cache", "bench"
    )
    base, extra = scratch / "project", scratch / "project-extra-ws"
    sail = (scratch / "project-sail-1", scratch / "project-sail-2")
    for dest in (base, extra, *sail):
        shutil.copytree(ROOT, dest, ignore=ignore)
        for shared in (".venv", "node_modules"):
            (dest / shared).symlink_to(ROOT / shared)
    found = workspace_files(base)
    added = (EXTRA_WORKSPACE, *SAIL_WORKSPACES)
    if any(name in found for name in added) or "staging" not in found:
        raise BenchError(f"need a staging workspace and none of {added} in config/")
    shutil.copyfile(found["staging"], extra / "config" / f"{EXTRA_WORKSPACE}.yaml")
    for count, dest in enumerate(sail, start=1):
        for name in SAIL_WORKSPACES[:count]:
            shutil.copyfile(SAIL_WORKSPACE_SOURCE, dest / "config" / f"{name}.yaml")
    return Projects(base=base, extra=extra, sail=sail, workspaces=tuple(found))


# The app's own discovery (.yaml and .yml), run by the project's python: importing anything
# under `constructs` here would start a jsii node process inside the benchmark itself.
_WORKSPACE_FILES = """
import json, sys
from pathlib import Path
from constructs.workspace_config import workspace_paths
found, problems = workspace_paths(Path("config"), Path("."))
problems += [f"{name}: {len(paths)} files" for name, paths in found.items() if len(paths) > 1]
print(json.dumps({name: str(paths[0]) for name, paths in found.items()}))
sys.exit("\\n".join(problems) or None)
"""


def workspace_files(project: Path) -> dict[str, Path]:
    """Each workspace of the project copy and its file, sorted by name."""
    done = subprocess.run(
        [str(PYTHON), "-c", _WORKSPACE_FILES],
        cwd=project,
        env=child_env(plain_imports=False, jsii_cache=None),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise BenchError(f"cannot list the workspaces: {done.stderr.strip()}")
    return {name: project / path for name, path in json.loads(done.stdout).items()}


# --- Measuring ---------------------------------------------------------------------------------
def measure(repeat: int, scratch: Path, projects: Projects) -> dict[str, Any]:
    cold: dict[str, Sample] = {}
    for variant in (FAST, PLAIN):
        progress(f"cold jsii cache: {variant.label}")
        cache = Path(tempfile.mkdtemp(prefix="jsii-cache-", dir=scratch))
        cold[variant.key] = run_synth(variant, projects, scratch, jsii_cache=cache)
    for variant in ROUND:
        progress(f"warm-up: {variant.label}")
        run_synth(variant, projects, scratch)
    samples: dict[str, list[Sample]] = {v.key: [] for v in ROUND}
    for rep in range(repeat):
        order = ROUND if rep % 2 == 0 else tuple(reversed(ROUND))
        for variant in order:
            progress(f"repetition {rep + 1}/{repeat}: {variant.label}")
            samples[variant.key].append(run_synth(variant, projects, scratch))
    return {"cold": cold, "samples": samples}


def progress(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


def seconds_of(samples: Sequence[Sample]) -> list[float]:
    return [s.seconds for s in samples]


def summarize(samples: Sequence[Sample]) -> dict[str, float]:
    times = seconds_of(samples)
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "median_cpu_s": statistics.median(s.cpu_seconds for s in samples),
        "median_max_rss_mib": statistics.median(s.max_rss_mib for s in samples),
    }


def paired_ratio(num: Sequence[Sample], den: Sequence[Sample]) -> float:
    """Median of per-repetition ratios: each pair ran back to back, so drift cancels out."""
    return statistics.median(a / b for a, b in zip(seconds_of(num), seconds_of(den), strict=True))


def paired_difference_ms(more: Sequence[Sample], less: Sequence[Sample]) -> float:
    pairs = zip(seconds_of(more), seconds_of(less), strict=True)
    return statistics.median((a - b) * 1000 for a, b in pairs)


def verdicts(samples: dict[str, list[Sample]]) -> dict[str, Any]:
    ratio = paired_ratio(samples[FAST.key], samples[PLAIN.key])
    extra_ms = paired_difference_ms(samples[FAST_EXTRA.key], samples[FAST.key])
    sail_ms = paired_difference_ms(samples[FAST_SAIL_2.key], samples[FAST_SAIL_1.key])
    return {
        "fast_to_plain_ratio": ratio,
        "fast_to_plain_ratio_target": MAX_FAST_TO_PLAIN_RATIO,
        "fast_to_plain_ratio_pass": ratio <= MAX_FAST_TO_PLAIN_RATIO,
        "extra_workspace_ms": extra_ms,
        "extra_workspace_ms_target": MAX_MS_PER_EXTRA_WORKSPACE,
        "extra_workspace_ms_pass": extra_ms <= MAX_MS_PER_EXTRA_WORKSPACE,
        # Reported only: CPU time does not grow when other processes compete for the cores, so it
        # tells a busy machine's noise from a real cost when the wall-clock difference is large.
        "extra_workspace_cpu_ms": statistics.median(
            (a.cpu_seconds - b.cpu_seconds) * 1000
            for a, b in zip(samples[FAST_EXTRA.key], samples[FAST.key], strict=True)
        ),
        # Each further Sail workspace, against the same per-workspace target.
        "sail_workspace_ms": sail_ms,
        "sail_workspace_ms_pass": sail_ms <= MAX_MS_PER_EXTRA_WORKSPACE,
        # Reported only: what a synth pays once when it has any Sail workspace.
        "first_sail_workspace_ms": paired_difference_ms(
            samples[FAST_SAIL_1.key], samples[FAST.key]
        ),
        # Reported only: the CLI's own start-up and checks are the same on both sides.
        "cli_fast_to_plain_ratio": paired_ratio(samples[CLI_FAST.key], samples[CLI_PLAIN.key]),
    }


# --- Describing the machine --------------------------------------------------------------------
def machine() -> dict[str, Any]:
    versions = json.loads(
        command_output(
            [
                str(PYTHON),
                "-c",
                "import importlib.metadata as m, json, platform; print(json.dumps("
                "{'python': platform.python_version(), **{p: m.version(p) for p in "
                "('cdktf', 'jsii', 'cdktf-cdktf-provider-kubernetes', 'cdktf-cdktf-provider-null')"
                "}}))",
            ]
        )
    )
    cli = json.loads((ROOT / "node_modules" / "cdktf-cli" / "package.json").read_text())
    return {
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "memory_gib": round(memory_kib() / 1024 / 1024, 1),
        "os": platform.platform(),
        "node": command_output(["node", "--version"]),
        "cdktf_cli": cli["version"],
        **versions,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "commit": command_output(["git", "-C", str(ROOT), "describe", "--always", "--dirty"]),
    }


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    text = cpuinfo.read_text() if cpuinfo.exists() else ""
    found = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return found.group(1).strip() if found else platform.processor() or "unknown"


def memory_kib() -> int:
    meminfo = Path("/proc/meminfo")
    found = re.search(r"^MemTotal:\s*(\d+)", meminfo.read_text() if meminfo.exists() else "")
    return int(found.group(1)) if found else 0


def command_output(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()


# --- Reporting ---------------------------------------------------------------------------------
def report_markdown(results: dict[str, Any]) -> str:
    """The figures as Markdown: printed to stdout and, with --update-readme, put in README.md."""
    summary, cold, v, m = (
        results["summary"],
        results["cold_jsii_cache"],
        results["verdicts"],
        results["machine"],
    )
    workspaces = ", ".join(results["workspaces"])
    lines = [
        f"Median of {results['repeat']} alternating runs, workspaces {workspaces} "
        f"({results['date']}, commit {m['commit']}).",
        "",
        "| synth | median | min | max | CPU (median) | peak RSS (median) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for variant in ROUND:
        s = summary[variant.key]
        lines.append(
            f"| {variant.label} | {s['median_s']:.2f} s | {s['min_s']:.2f} s | "
            f"{s['max_s']:.2f} s | {s['median_cpu_s']:.2f} s | {s['median_max_rss_mib']:.0f} MiB |"
        )
    for variant in (FAST, PLAIN):
        c = cold[variant.key]
        lines.append(
            f"| {variant.label}, empty jsii cache (1 run) | {c['seconds']:.2f} s | | | "
            f"{c['cpu_seconds']:.2f} s | {c['max_rss_mib']:.0f} MiB |"
        )
    ratio_ok = "PASS" if v["fast_to_plain_ratio_pass"] else "FAIL"
    extra_ok = "PASS" if v["extra_workspace_ms_pass"] else "FAIL"
    sail_ok = "PASS" if v["sail_workspace_ms_pass"] else "FAIL"
    lines += [
        "",
        f"- fast / plain, median of paired ratios: **{v['fast_to_plain_ratio']:.2f}** "
        f"(target at most {v['fast_to_plain_ratio_target']:.2f}): {ratio_ok}",
        f"- one more workspace adds, median of paired differences: "
        f"**{v['extra_workspace_ms']:.0f} ms** "
        f"(target at most {v['extra_workspace_ms_target']:.0f} ms): {extra_ok}; "
        f"CPU time {v['extra_workspace_cpu_ms']:.0f} ms",
        f"- a second Sail workspace adds, median of paired differences: "
        f"**{v['sail_workspace_ms']:.0f} ms** "
        f"(target at most {v['extra_workspace_ms_target']:.0f} ms): {sail_ok}; the first one "
        f"adds {v['first_sail_workspace_ms']:.0f} ms once per synth (reported, no target)",
        f"- `cdktf synth` fast / plain, median of paired ratios: "
        f"**{v['cli_fast_to_plain_ratio']:.2f}** (reported, no target)",
        "",
        f"Machine: {m['cpu_model']}, {m['logical_cpus']} logical CPUs, {m['memory_gib']} GiB; "
        f"{m['os']}; Python {m['python']}, Node {m['node']}, cdktf {m['cdktf']} "
        f"(CLI {m['cdktf_cli']}), jsii {m['jsii']}; load average {results['load_before']} "
        f"before, {m['load_average_1min']} after (other work on the machine adds noise).",
        "Peak RSS is the largest single process of a run (usually the jsii node kernel).",
    ]
    return "\n".join(lines)


def update_readme(markdown: str) -> None:
    text = README.read_text(encoding="utf-8")
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise BenchError(f"README.md has no {README_START} ... {README_END} section")
    new = text[: start + len(README_START)] + "\n" + markdown + "\n" + text[end:]
    README.write_text(new, encoding="utf-8")


def write_results(results: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = results["date"].replace(":", "").replace("-", "")
    path = RESULTS_DIR / f"synth-{stamp}.json"
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return path


# --- Entry point -------------------------------------------------------------------------------
def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=5, help="alternating repetitions (5)")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument(
        "--update-readme", action="store_true", help="put the figures in README.md's Speed section"
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    date = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    load_before = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="istio-cdktf-bench-") as tmp:
        scratch = Path(tmp)
        try:
            projects = make_projects(scratch)
            measured = measure(args.repeat, scratch, projects)
        except BenchError as exc:
            print(f"benchmark aborted: {exc}", file=sys.stderr)
            return 2
    samples: dict[str, list[Sample]] = measured["samples"]
    results: dict[str, Any] = {
        "date": date,
        "repeat": args.repeat,
        "load_before": load_before,
        "workspaces": list(projects.workspaces),
        "machine": machine(),
        "summary": {key: summarize(runs) for key, runs in samples.items()},
        "verdicts": verdicts(samples),
        "cold_jsii_cache": {key: asdict(s) for key, s in measured["cold"].items()},
        "samples": {key: [asdict(s) for s in runs] for key, runs in samples.items()},
    }
    markdown = report_markdown(results)
    print(markdown)
    print(f"\nresults: {write_results(results).relative_to(ROOT)}")
    if args.update_readme:
        update_readme(markdown)
        print("README.md Speed section updated")
    verdict = results["verdicts"]
    passed = all(
        verdict[key]
        for key in ("fast_to_plain_ratio_pass", "extra_workspace_ms_pass", "sail_workspace_ms_pass")
    )
    print("PASS" if passed else "FAIL")
    return 1 if args.check and not passed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
