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
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the benchmarks reuse tests/support; run from anywhere
    sys.path.insert(0, str(REPO))

from bench.admission import Scenario, admission_benchmarks  # noqa: E402
from bench.floor import running_floor  # noqa: E402
from bench.resolution import resolution_e2e, resolution_micro  # noqa: E402
from bench.results import Result, Stopwatch, machine_facts, summary_text, write_results  # noqa: E402
from bench.verification import verification_e2e, verification_micro  # noqa: E402
from bench.world import World, pinned_images, pod_review, write_body  # noqa: E402
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
    parser.add_argument("--no-hey", action="store_true", help="skip the hey scenario")
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
        "hey": not args.no_hey,
        "floor": not args.no_floor,
    }
    results.sort(key=lambda result: result.group)  # stable: the order within a group is kept
    print(summary_text(results, machine))
    print(
        f"\nwall time {machine['wall_seconds']} s; load average at start {machine['load_average_at_start']}, "
        f"at end {machine['load_average_at_end']}"
    )
    if args.out is not None:
        write_results(args.out, machine=machine, results=results, settings=settings)
        print(f"wrote {args.out}")
    return 0


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
        if args.groups & {"resolution", "verification"}:
            server_dir = _mkdir(directory / "server-1")
            with running_server(server_dir, policy, workers=1) as server:
                if "resolution" in args.groups:
                    _logger.info("resolution end to end")
                    results.append(resolution_e2e(world, server, tags_per_run=samples, runs=runs))
                if "verification" in args.groups:
                    _logger.info("verification end to end")
                    results.append(verification_e2e(world, server, images_per_run=samples, runs=runs))
        if "admission" in args.groups:
            results += _admission(args, world=world, directory=directory, policy=policy)
    return results


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _admission(args: argparse.Namespace, *, world: World, directory: Path, policy: Path) -> list[Result]:
    bodies = _mkdir(directory / "bodies")
    pinned = write_body(bodies / "pinned.json", pod_review(pinned_images(5), uid="bench-pinned"))
    signed_images = [world.signed_ref(image) for image in world.push_signed(count=5, prefix="admission")]
    signed = write_body(bodies / "signed.json", pod_review(signed_images, uid="bench-signed"))
    scenarios = [
        Scenario(
            name="validate-pinned-c1",
            path="/validate",
            body=pinned,
            connections=1,
            tool="wrk",
            images="pinned",
        ),
        Scenario(
            name="validate-pinned-c16",
            path="/validate",
            body=pinned,
            connections=16,
            tool="wrk",
            images="pinned",
        ),
        Scenario(
            name="mutate-pinned-c1", path="/mutate", body=pinned, connections=1, tool="wrk", images="pinned"
        ),
        Scenario(
            name="mutate-pinned-c16", path="/mutate", body=pinned, connections=16, tool="wrk", images="pinned"
        ),
        Scenario(
            name="validate-signed-c16",
            path="/validate",
            body=signed,
            connections=16,
            tool="wrk",
            images="signed",
        ),
    ]
    if not args.no_hey:
        scenarios.append(
            Scenario(
                name="validate-pinned-c16-hey",
                path="/validate",
                body=pinned,
                connections=16,
                tool="hey",
                images="pinned",
            )
        )
    if not args.no_floor:
        scenarios.append(
            Scenario(name="floor-c1", path="/mutate", body=pinned, connections=1, tool="wrk", images="floor")
        )
        scenarios.append(
            Scenario(
                name="floor-c16", path="/mutate", body=pinned, connections=16, tool="wrk", images="floor"
            )
        )
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(running_server(_mkdir(directory / "server-2"), policy, workers=2))
        floor_url = None
        if not args.no_floor:
            floor_url = stack.enter_context(running_floor(directory / "floor", port=free_port()))
        _logger.info("admission load on %s (floor %s)", server.url, floor_url)
        return admission_benchmarks(
            server,
            scenarios,
            floor_url=floor_url,
            runs=args.runs,
            seconds=args.seconds,
            warmup=args.warmup,
            workdir=bodies,
        )


if __name__ == "__main__":
    sys.exit(main())
