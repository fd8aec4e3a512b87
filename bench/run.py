"""refcnn vs torch CPU, measured side by side: writes reports/bench.json and reports/bench.md.

    python bench/run.py                      # threads 1 and 2, about 3 minutes on 2 cores
    python bench/run.py --threads 1 --quick  # a fast look (fewer rounds, no 2-thread run)
    python bench/run.py --suite              # also time the test suite per hypothesis profile
    python bench/run.py --conformance ci thorough  # also time the conformance session's pytest
    python bench/run.py --only-suites --conformance  # just that, keeping the last ratios

Every figure is a RATIO of two timings taken in the same process, interleaved round by round
(see bench/timing.py), with NumPy's BLAS and torch set to the same number of threads: each
thread count runs in its own child process, started with OPENBLAS_NUM_THREADS, OMP_NUM_THREADS
and MKL_NUM_THREADS set (BLAS reads them when it loads) and torch.set_num_threads. NumPy's own
elementwise loops are single-threaded whatever the setting. What is measured and why:
docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


# --- environment --------------------------------------------------------------------------------


def blas_threads() -> int | None:
    """The number of threads NumPy's OpenBLAS will use, asked from the library itself."""
    import ctypes

    import numpy  # noqa: F401  (loads the BLAS library into the process)

    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    except OSError:
        return None
    for path in sorted(paths):
        library = ctypes.CDLL(path)
        for name in (
            "scipy_openblas_get_num_threads64_",
            "openblas_get_num_threads64_",
            "openblas_get_num_threads",
        ):
            function = getattr(library, name, None)
            if function is not None:
                return int(function())
    return None


def environment() -> dict[str, Any]:
    import numpy as np
    import torch

    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        cpu = platform.processor()
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numpy_blas": f"{blas.get('name')} {blas.get('version')}",
        "torch": torch.__version__,
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average_start": os.getloadavg(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


# --- the child: one thread count ----------------------------------------------------------------


def ratio_cases(rounds: int) -> list[dict[str, Any]]:
    import numpy as np

    from bench.cases import CASES
    from bench.timing import interleaved

    rows = []
    for case in CASES:
        for dtype in ("float64", "float32"):
            ref, tor, outputs = case.make(dtype, np.random.default_rng(0))
            dtypes = sorted(
                {str(np.asarray(value).dtype) for value in outputs if value is not None}
            )
            timing = interleaved(ref, tor, rounds=rounds)
            rows.append(
                {
                    "op": case.op,
                    "shape": case.shape,
                    "dtype": dtype,
                    "target": case.target if dtype == "float64" else None,
                    "refcnn_ms": timing["a_ms"],
                    "torch_ms": timing["b_ms"],
                    "ratio": timing["ratio"],
                    "ratio_q1": timing["ratio_q1"],
                    "ratio_q3": timing["ratio_q3"],
                    "refcnn_spread": timing["a_spread"],
                    "torch_spread": timing["b_spread"],
                    "rounds": timing["rounds"],
                    "calls_per_round": timing["number"],
                    "output_dtypes": dtypes,  # refcnn's output and gradients
                }
            )
            print(
                f"  {case.op:<30} {case.shape:<34} {dtype}  ratio {timing['ratio']:.2f} "
                f"[{timing['ratio_q1']:.2f}, {timing['ratio_q3']:.2f}]",
                file=sys.stderr,
                flush=True,
            )
    return rows


CONV_SIZES = {  # conv2d samples for the gradient checks: x elements = batch·16·size²
    "tiny": {"batch": 1, "in_channels": 2, "out_channels": 2, "input_size": (5, 5)},
    "small": {"batch": 2, "in_channels": 3, "out_channels": 4, "input_size": (8, 8)},
    "1k": {"batch": 1, "in_channels": 16, "out_channels": 16, "input_size": (8, 8)},
    "10k": {"batch": 1, "in_channels": 16, "out_channels": 16, "input_size": (25, 25)},
    "100k": {"batch": 8, "in_channels": 16, "out_channels": 16, "input_size": (28, 28)},
    "400k": {"batch": 32, "in_channels": 16, "out_channels": 16, "input_size": (28, 28)},
}


def _conv_sample(size: str) -> Any:
    from refcnn.testing import catalog

    spec = catalog.get("conv2d")
    params = {
        **CONV_SIZES[size],
        "groups": 1,
        "bias": True,
        "kernel_size": 3,
        "stride": 1,
        "padding": 1,
        "dilation": 1,
    }
    return spec, spec.sample(params, seed=0, dtype="float64")


def gradient_checks(quick: bool) -> list[dict[str, Any]]:
    """Costs of refcnn's gradient checks and torch.autograd.gradcheck on conv2d, in units of one
    refcnn forward+backward on the same sample (float64)."""
    import torch
    import torch.nn.functional as F

    from bench.timing import median_time
    from refcnn.testing import checks

    rows = []
    sizes = ("tiny", "small", "1k", "10k", "100k") if quick else tuple(CONV_SIZES)
    for size in sizes:
        spec, sample = _conv_sample(size)
        inputs, kwargs = sample.inputs, sample.kwargs
        elements = {name: int(value.size) for name, value in inputs.items() if value is not None}
        upstream = sample.random(spec.forward(**inputs, **kwargs).shape, "upstream")

        def forward_backward(
            spec: Any = spec, inputs: Any = inputs, kwargs: Any = kwargs, upstream: Any = upstream
        ) -> Any:
            spec.forward(**inputs, **kwargs)
            return spec.backward(upstream, **inputs, **kwargs)

        tensors = tuple(torch.tensor(inputs[n], requires_grad=True) for n in spec.inputs)

        def torch_conv(x: Any, w: Any, b: Any, kwargs: Any = kwargs) -> Any:
            return F.conv2d(x, w, b, **kwargs)

        full = size in ("tiny", "small")
        repeats = 5 if elements["x"] < 200_000 else 3
        row: dict[str, Any] = {
            "op": "conv2d",
            "size": size,
            "elements": elements,
            "forward_backward_ms": median_time(forward_backward, rounds=7) * 1e3,
            "directional_fd_ms": median_time(
                lambda spec=spec, sample=sample: checks.directional_fd(spec, sample),
                rounds=repeats,
            )
            * 1e3,
            "torch_gradcheck_fast_ms": median_time(
                lambda tensors=tensors: torch.autograd.gradcheck(
                    torch_conv, tensors, fast_mode=True
                ),
                rounds=repeats,
            )
            * 1e3,
        }
        if full:
            row["full_jacobian_fd_ms"] = (
                median_time(
                    lambda spec=spec, sample=sample: checks.full_jacobian_fd(spec, sample),
                    rounds=3,
                )
                * 1e3
            )
            row["torch_gradcheck_full_ms"] = (
                median_time(
                    lambda tensors=tensors: torch.autograd.gradcheck(torch_conv, tensors),
                    rounds=3,
                )
                * 1e3
            )
        rows.append(row)
        print(f"  gradient checks, conv2d {size}: {row}", file=sys.stderr, flush=True)
    return rows


def _peak_bytes(call: Any) -> int:
    import tracemalloc

    tracemalloc.start()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    call()
    peak = tracemalloc.get_traced_memory()[1] - before
    tracemalloc.stop()
    return peak


def _peaks(dtype: str) -> list[dict[str, Any]]:
    import numpy as np

    import refcnn.functional as R
    from bench.cases import book_conv2d, book_conv2d_backward
    from refcnn.functional import conv

    rng = np.random.default_rng(0)
    n, c, size, m, k = 32, 16, 32, 32, 3
    x = rng.standard_normal((n, c, size, size)).astype(dtype)
    w = rng.standard_normal((m, c, k, k)).astype(dtype)
    b = rng.standard_normal(m).astype(dtype)
    g = rng.standard_normal((n, m, size, size)).astype(dtype)
    calls = {
        "refcnn forward": lambda: R.conv2d(x, w, b, padding=1),
        "refcnn backward": lambda: R.conv2d_backward(g, x, w, b, padding=1),
        "book layout forward": lambda: book_conv2d(x, w, b, 1),
        "book layout backward": lambda: book_conv2d_backward(g, x, w, 1),
    }
    im2col_bytes = n * size * size * c * k * k * x.itemsize
    per_image = c * k * k * size * size * x.itemsize
    chunk_images = max(1, min(n, conv.CHUNK_BYTES // per_image))
    rows = []
    for name, call in calls.items():
        row = {
            "call": name,
            "dtype": dtype,
            "shape": "N32 C16 32×32 M32 k3 p1",
            "input_bytes": x.nbytes,
            "full_im2col_bytes": im2col_bytes,
            "chunk_bytes": chunk_images * per_image if name.startswith("refcnn") else None,
            "peak_bytes": _peak_bytes(call),
        }
        if name.startswith("refcnn"):
            # the chunk budget is in bytes: with the same images per chunk as float64, every
            # buffer of a genuinely float32 computation is half its float64 size
            default = conv.CHUNK_BYTES
            conv.CHUNK_BYTES = default * x.itemsize // 8
            try:
                row["peak_bytes_float64_chunks"] = _peak_bytes(call)
            finally:
                conv.CHUNK_BYTES = default
        rows.append(row)
    return rows


def peak_memory() -> list[dict[str, Any]]:
    """tracemalloc's peak (NumPy reports its buffers to it) during conv2d forward and backward,
    next to the input and to the full im2col matrix the book's layout materialises."""
    return _peaks("float64") + _peaks("float32")


def child(threads: int, rounds: int, quick: bool, out: Path) -> None:
    import torch

    torch.set_num_threads(threads)
    result: dict[str, Any] = {
        "threads": {
            "requested": threads,
            "numpy_blas": blas_threads(),
            "torch": torch.get_num_threads(),
            **{name: os.environ.get(name) for name in THREAD_VARIABLES},
        }
    }
    result["load_average_start"] = os.getloadavg()
    print(f"threads={threads}: {result['threads']}", file=sys.stderr, flush=True)
    result["ratios"] = ratio_cases(rounds)
    result["gradient_checks"] = gradient_checks(quick)
    result["peak_memory"] = peak_memory()
    result["load_average_end"] = os.getloadavg()
    out.write_text(json.dumps(result, indent=1))


# --- the suite's time per hypothesis profile ----------------------------------------------------

SUITE_SUBSET = [
    "properties",
    "conformance",
    "-k",
    "(conv2d or im2col or max_pool2d or avg_pool2d) and not network and not adaptive",
]


def timed_pytest(arguments: list[str], profile: str, label: str) -> dict[str, Any]:
    """One pytest run under a hypothesis profile, in a child process: its wall time, pytest's
    summary line and its header line on the examples per property. Records go to a scratch
    directory (a timing run must not replace reports/records)."""
    with tempfile.TemporaryDirectory() as records:
        start = time.perf_counter()
        completed = subprocess.run(
            [sys.executable, "-m", "pytest", *arguments],
            cwd=ROOT,
            env={**os.environ, "REFCNN_PROFILE": profile, "REFCNN_RECORDS_DIR": records},
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - start
    lines = completed.stdout.splitlines()
    summary = [line for line in lines if " passed" in line or " failed" in line]
    header = [line for line in lines if line.startswith("refcnn: hypothesis profile")]
    run = {
        "profile": profile,
        "seconds": seconds,
        "summary": summary[-1].strip("= ") if summary else completed.stdout[-300:],
        "examples": header[0] if header else "",
        "exit_code": completed.returncode,
    }
    print(f"  {label} {profile}: {seconds:.0f} s {run['summary']}", file=sys.stderr)
    return run


def suite_scaling() -> dict[str, Any]:
    """Wall time of one subset of the suite under each hypothesis profile (one process, no
    xdist), to see how the suite grows with max_examples."""
    arguments = ["-q", "-p", "no:cacheprovider", *SUITE_SUBSET]
    return {
        "subset": "pytest " + " ".join(SUITE_SUBSET),
        "runs": [timed_pytest(arguments, p, "suite") for p in ("dev", "ci", "thorough")],
        "load_average": os.getloadavg(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


# --- the conformance session's time -------------------------------------------------------------

# `nox -s conformance` runs this pytest command (then writes its report, which takes seconds):
# timed here in the current environment, i.e. with a reused venv and no install step.
CONFORMANCE = ["properties", "conformance", "-n", "auto", "-p", "no:cacheprovider"]


def conformance_times(profiles: list[str]) -> dict[str, Any]:
    """Wall time of the conformance session's pytest (2 xdist workers on 2 cores) per profile,
    with the header line that says how many examples each property draws."""
    return {
        "command": "pytest " + " ".join(CONFORMANCE),
        "runs": [timed_pytest(CONFORMANCE, p, "conformance") for p in profiles],
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


# --- the parent: children, then the report ------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds per ratio")
    parser.add_argument("--quick", action="store_true", help="5 rounds, smaller grad checks")
    parser.add_argument("--suite", action="store_true", help="also time the suite per profile")
    parser.add_argument(
        "--conformance",
        nargs="*",
        metavar="PROFILE",
        help="also time the conformance session's pytest under these profiles (default: ci)",
    )
    parser.add_argument(
        "--only-suites", action="store_true", help="time the suites only; keep the last ratios"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "reports")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    rounds = 5 if args.quick else args.rounds
    if args.child is not None:
        child(args.threads[0], rounds, args.quick, args.child)
        return 0

    from bench.report import write_reports

    started = time.perf_counter()
    previous = args.out / "bench.json"
    kept = json.loads(previous.read_text()) if previous.is_file() else {}
    result: dict[str, Any] = {"environment": environment(), "runs": []}
    if args.only_suites:  # the ratios, checks and memory of the last full run stay as they were
        result = dict(kept)
    for threads in [] if args.only_suites else args.threads:
        with tempfile.TemporaryDirectory() as scratch:
            out = Path(scratch) / "child.json"
            env = {**os.environ, **{name: str(threads) for name in THREAD_VARIABLES}}
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
            command = [sys.executable, str(Path(__file__).resolve()), "--child", str(out)]
            command += ["--threads", str(threads), "--rounds", str(rounds)]
            command += ["--quick"] if args.quick else []
            subprocess.run(command, env=env, check=True)
            result["runs"].append(json.loads(out.read_text()))
    # the suites take minutes to hours: the last measured times stay until measured again
    result["suite"] = suite_scaling() if args.suite else kept.get("suite")
    result["conformance"] = (
        conformance_times(args.conformance or ["ci"])
        if args.conformance is not None
        else kept.get("conformance")
    )
    if not args.only_suites:
        result["environment"]["load_average_end"] = os.getloadavg()
        result["environment"]["bench_seconds"] = time.perf_counter() - started
        result["environment"]["command"] = "python bench/run.py " + " ".join(sys.argv[1:])
    write_reports(result, args.out)
    print(f"bench: wrote {args.out / 'bench.json'} and {args.out / 'bench.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
