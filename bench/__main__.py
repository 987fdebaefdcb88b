"""``python -m bench``: run imagegate's benchmarks on this machine, print a summary, write results JSON.

    python -m bench --out bench/results.json          # everything (about 4 minutes)
    python -m bench --only resolution,verification    # the quick, in-process and end-to-end latency parts
    python -m bench --seconds 3 --warmup 1            # shorter load runs (numbers are noisier)

Every load run is bounded in time and connections and aims at 127.0.0.1 only; registries, the test
Sigstore and servers are started in a temporary directory and stopped at the end.
"""

from __future__ import annotations

__all__ = ["main"]

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the benchmarks reuse tests/support; run from anywhere
    sys.path.insert(0, str(REPO))

from bench.admission import Scenario, Target, admission_benchmarks, stall_result  # noqa: E402
from bench.churn import churn_benchmark  # noqa: E402
from bench.floor import running_floor  # noqa: E402
from bench.profile import profile_worker  # noqa: E402
from bench.resolution import resolution_e2e, resolution_micro  # noqa: E402
from bench.results import Result, Stopwatch, machine_facts, summary_text, write_results  # noqa: E402
from bench.stall import stall_probe  # noqa: E402
from bench.targets import check_targets, targets_text  # noqa: E402
from bench.verification import COLD_SCENARIOS, verification_e2e, verification_micro  # noqa: E402
from bench.world import World, pinned_images, pod_review, workload_review, write_body  # noqa: E402
from tests.support.server import free_port, running_server  # noqa: E402

_logger = logging.getLogger("bench")
GROUPS = ("admission", "resolution", "verification")


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the results JSON here (e.g. bench/results.json)")
    parser.add_argument(
        "--only", default=",".join(GROUPS), help=f"comma-separated subset of {','.join(GROUPS)}"
    )
    parser.add_argument("--runs", type=int, default=3, help="measured runs per benchmark (>= 3; default 3)")
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds per load run (default 8)")
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="warm-up seconds per load scenario (default 2)"
    )
    parser.add_argument("--samples", type=int, default=10, help="images/tags per latency run (default 10)")
    parser.add_argument(
        "--churn-requests",
        type=int,
        default=100_000,
        help="requests of the churn scenario (RSS read after 10,000 and after this many; 0 skips it)",
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profile of a worker")
    parser.add_argument("--png", type=Path, help="draw the latency distributions here (needs matplotlib)")
    parser.add_argument("--no-floor", action="store_true", help="skip the live floor (trivial app) scenario")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, policy)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    groups = {g.strip() for g in args.only.split(",") if g.strip()}
    if not groups <= set(GROUPS):
        parser.error(f"--only: unknown {sorted(groups - set(GROUPS))}; choose from {', '.join(GROUPS)}")
    if args.runs < 3:
        parser.error("--runs must be at least 3 (median and spread need 3 runs)")
    if not 0 < args.seconds <= 30 or not 0 <= args.warmup <= 10:
        parser.error("--seconds must be in (0, 30] and --warmup in [0, 10]: load runs stay bounded")
    if args.samples < 3:
        parser.error("--samples must be at least 3")
    if args.churn_requests and not 20_000 <= args.churn_requests <= 200_000:
        parser.error("--churn-requests must be 0 or within [20000, 200000] (RSS is read after 10,000 too)")
    args.groups = groups
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    clock = Stopwatch()
    machine = machine_facts(REPO)
    busy = machine["load_average_at_start"][0]
    if busy > (machine["cores"] or 1) / 2:
        print(
            f"warning: load average {busy:.1f} on {machine['cores']} cores: other work shares the CPUs, "
            "absolute numbers will be low (compare with the live floor row)",
            file=sys.stderr,
        )
    directory = Path(tempfile.mkdtemp(prefix="imagegate-bench-"))
    results: list[Result] = []
    try:
        results = _run(args, directory)
    finally:
        if args.keep:
            print(f"kept {directory}", file=sys.stderr)
        else:
            shutil.rmtree(directory, ignore_errors=True)
    machine["load_average_at_end"] = list(os.getloadavg())
    machine["wall_seconds"] = round(clock.seconds, 1)
    settings = {
        "runs": args.runs,
        "seconds": args.seconds,
        "warmup": args.warmup,
        "samples": args.samples,
        "groups": sorted(args.groups),
        "churn_requests": args.churn_requests,
        "profile": not args.no_profile,
        "floor": not args.no_floor,
    }
    results.sort(key=lambda result: result.group)  # stable: the order within a group is kept
    print(summary_text(results, machine))
    checks = check_targets(results)
    print(targets_text(checks))
    print(
        f"\nwall time {machine['wall_seconds']} s; load average at start {machine['load_average_at_start']}, "
        f"at end {machine['load_average_at_end']}"
    )
    if args.out is not None:
        write_results(args.out, machine=machine, results=results, settings=settings, targets=checks)
        print(f"wrote {args.out}")
        if args.png is not None:
            _draw(args.out, args.png)
    return 0


def _draw(results: Path, png: Path) -> None:
    from bench.plot import plot

    try:
        print(f"wrote {plot(json.loads(results.read_text()), png)}")
    except ImportError:
        print("matplotlib is not installed (pip install -e '.[bench]'): no latency plot", file=sys.stderr)


def _run(args: argparse.Namespace, directory: Path) -> list[Result]:
    results: list[Result] = []
    samples, runs = args.samples, args.runs
    with World.create(directory / "world") as world:
        policy = world.write_policy(directory / "policy")
        if "resolution" in args.groups:
            for mode in ("plain", "tls", "token"):
                _logger.info("resolution against the %s registry", mode)
                results.append(resolution_micro(world, mode=mode, tags_per_run=samples, runs=runs))
        if "verification" in args.groups:
            _logger.info("verification in-process")
            results.append(verification_micro(world, policy_path=policy, images_per_run=samples, runs=runs))
        if "resolution" in args.groups:
            with running_server(_mkdir(directory / "server-1"), policy, workers=1) as server:
                _logger.info("resolution end to end")
                results.append(resolution_e2e(world, server, tags_per_run=samples, runs=runs))
        if "verification" in args.groups:
            for markers in (False, True):
                cold_policy = world.write_cold_policy(directory / "policy", markers=markers)
                server_dir = _mkdir(directory / f"server-cold{'-markers' if markers else ''}")
                with running_server(server_dir, cold_policy, workers=1) as server:
                    for mode in (mode for mode, on in COLD_SCENARIOS if on == markers):
                        _logger.info("verification end to end: %s registry, markers %s", mode, markers)
                        results.append(
                            verification_e2e(
                                world, server, mode=mode, markers=markers, images_per_run=samples, runs=runs
                            )
                        )
        if "admission" in args.groups:
            results += _admission(args, world=world, directory=directory, policy=policy)
    return results


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _admission(args: argparse.Namespace, *, world: World, directory: Path, policy: Path) -> list[Result]:
    bodies = _mkdir(directory / "bodies")
    pinned = write_body(bodies / "pinned.json", pod_review(pinned_images(5), uid="bench-pinned"))
    deployment = write_body(
        bodies / "deployment.json", workload_review("Deployment", pinned_images(10), uid="bench-deployment")
    )
    signed_images = [world.signed_ref(image) for image in world.push_signed(count=5, prefix="admission")]
    signed = write_body(bodies / "signed.json", pod_review(signed_images, uid="bench-signed"))

    def scenario(name: str, path: str, body: Path, images: str, **extra: Any) -> Scenario:
        return Scenario(name=name, path=path, body=body, images=images, **extra)

    wrk1: dict[str, Any] = {"connections": 1, "tool": "wrk"}
    wrk16: dict[str, Any] = {"connections": 16, "tool": "wrk"}
    rate200: dict[str, Any] = {
        "connections": 8,
        "tool": "hey",
        "rate": 25,
    }  # hey -q 25 -c 8: 200 req/s offered
    scenarios = [
        scenario("validate-pinned-c1", "/validate", pinned, "pinned", **wrk1, floor="floor-c1"),
        scenario("validate-pinned-c16", "/validate", pinned, "pinned", **wrk16, floor="floor-c16"),
        scenario("mutate-pinned-c16", "/mutate", pinned, "pinned", **wrk16, floor="floor-c16"),
        scenario("validate-pinned-200rps", "/validate", pinned, "pinned", **rate200, floor="floor-200rps"),
        scenario(
            "validate-deployment-c16",
            "/validate",
            deployment,
            "deployment",
            **wrk16,
            floor="floor-deployment-c16",
        ),
        scenario("validate-signed-c16", "/validate", signed, "signed", **wrk16, floor="floor-c16"),
    ]
    if not args.no_floor:
        scenarios += [
            scenario("floor-c1", "/mutate", pinned, "floor", **wrk1),
            scenario("floor-c16", "/mutate", pinned, "floor", **wrk16),
            scenario("floor-200rps", "/mutate", pinned, "floor", **rate200),
            scenario("floor-deployment-c16", "/mutate", deployment, "floor", **wrk16),
        ]
    else:
        scenarios = [dataclasses.replace(s, floor=None) for s in scenarios]
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(running_server(_mkdir(directory / "server-2"), policy, workers=2))
        floor = None
        if not args.no_floor:
            floor_url, floor_pid = stack.enter_context(running_floor(directory / "floor", port=free_port()))
            floor = Target(floor_url, floor_pid)
        _logger.info("admission load on %s (floor %s)", server.url, floor)
        results = admission_benchmarks(
            server,
            scenarios,
            floor=floor,
            runs=args.runs,
            seconds=args.seconds,
            warmup=args.warmup,
            workdir=bodies,
        )
        _logger.info("stall probe")
        probe = stall_probe(server.url, ca_file=server.ca_file, path="/validate", body=pinned.read_bytes())
        results.append(stall_result(probe, stalled=8))
        if not args.no_profile:
            _logger.info("profile")
            profiled = profile_worker(server, body=pinned, seconds=min(args.seconds, 8.0), workdir=bodies)
            if profiled is not None:
                results.append(profiled)
        if args.churn_requests:
            _logger.info("churn: %d requests", args.churn_requests)
            results.append(churn_benchmark(server, workdir=bodies, first=10_000, total=args.churn_requests))
    return results


if __name__ == "__main__":
    sys.exit(main())
