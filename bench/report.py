"""reports/bench.json (everything measured) and reports/bench.md (the tables and the targets)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CONFORMANCE_TARGET_S = 180.0  # `nox -s conformance`, ci profile, reused venv, 2 cores
GRADCHECK_TARGET = 10.0  # a directional check on a ≥ 100k-element conv input, in fwd+bwd units
GRADCHECK_MIN_ELEMENTS = 100_000


def _mib(value: float) -> str:
    return f"{value / 2**20:.1f} MiB"


def _ratio(row: dict[str, Any]) -> str:
    return f"{row['ratio']:.2f} [{row['ratio_q1']:.2f}, {row['ratio_q3']:.2f}]"


# A ratio whose interquartile range spans more than this fraction of its median says more about
# the other processes on the machine than about the code: no verdict is drawn from it.
NOISY = 0.25


def _noisy(row: dict[str, Any]) -> bool:
    return bool((row["ratio_q3"] - row["ratio_q1"]) > NOISY * row["ratio"])


def _verdict(row: dict[str, Any]) -> str:
    if row["target"] is None:
        return ""
    if _noisy(row):
        return f"≤ {row['target']}: too noisy to tell"
    return f"≤ {row['target']}: " + ("met" if row["ratio"] <= row["target"] else "NOT met")


def _threads(run: dict[str, Any]) -> str:
    t = run["threads"]
    return f"NumPy BLAS {t['numpy_blas']} thread(s), torch {t['torch']}"


def _target_rows(result: dict[str, Any]) -> list[str]:
    conformance = result.get("conformance")
    lines = []
    for run in result["runs"]:
        for op in ("conv2d", "max_pool2d", "avg_pool2d"):
            rows = [r for r in run["ratios"] if r["op"] == op and r["target"] is not None]
            if not rows:
                continue
            judged = [r for r in rows if not _noisy(r)]
            noisy = len(rows) - len(judged)
            note = f"; {noisy} of {len(rows)} shapes too noisy to tell" if noisy else ""
            if not judged:
                lines.append(
                    f"| {op} fwd+bwd float64 ≤ {rows[0]['target']}× torch, {_threads(run)} "
                    f"| every shape too noisy to tell | — |"
                )
                continue
            worst = max(judged, key=lambda r: r["ratio"])
            met = all(r["ratio"] <= r["target"] for r in judged)
            gap = "" if met else f" (gap: {worst['ratio'] / worst['target']:.2f}× the target)"
            lines.append(
                f"| {op} fwd+bwd float64 ≤ {worst['target']}× torch, {_threads(run)} "
                f"| worst {_ratio(worst)}, {worst['shape']}{note} "
                f"| {'yes' if met else 'NO'}{gap} |"
            )
    for run in result["runs"][:1]:
        float32 = [r for r in run["ratios"] if r["dtype"] == "float32"]
        upcast = [r for r in float32 if r["output_dtypes"] != ["float32"]]
        lines.append(
            "| float32 in, float32 out (no upcast): dtype of every refcnn output and gradient "
            f"| {len(float32) - len(upcast)} of {len(float32)} cases all float32 "
            f"| {'yes' if not upcast else 'NO: ' + ', '.join(r['op'] for r in upcast)} |"
        )
        peaks = {
            (m["call"], m["dtype"]): m.get("peak_bytes_float64_chunks", m["peak_bytes"])
            for m in run["peak_memory"]
        }
        halves = [
            peaks[(call, "float32")] / peaks[(call, "float64")]
            for call in ("refcnn forward", "refcnn backward")
            if (call, "float64") in peaks and (call, "float32") in peaks
        ]
        if halves:
            lines.append(
                "| float32 computes in float32 (no float64 temporaries): conv2d's peak memory, "
                "float32 over float64, same images per chunk "
                f"| forward {halves[0]:.2f}, backward {halves[-1]:.2f} (0.50: every buffer "
                f"halved) | {'yes' if max(halves) <= 0.55 else 'NO'} |"
            )
        large = [g for g in run["gradient_checks"] if g["elements"]["x"] >= GRADCHECK_MIN_ELEMENTS]
        if large:
            g = large[0]
            cost = g["directional_fd_ms"] / g["forward_backward_ms"]
            lines.append(
                f"| directional gradient check on a ≥ 100k-element conv input ≤ "
                f"{GRADCHECK_TARGET:.0f}× one fwd+bwd, {_threads(run)} "
                f"| {cost:.1f}× (x: {g['elements']['x']} elements) "
                f"| {'yes' if cost <= GRADCHECK_TARGET else 'NO'} |"
            )
    ci = next((r for r in (conformance or {}).get("runs", []) if r["profile"] == "ci"), None)
    measured, met = "not measured yet: `python bench/run.py --conformance`", "—"
    if ci is not None:
        measured = f"{ci['seconds']:.0f} s ({ci['summary']})"
        met = "yes" if ci["seconds"] <= CONFORMANCE_TARGET_S and ci["exit_code"] == 0 else "NO"
    lines.append(
        f"| `nox -s conformance`, ci profile, reused venv ≤ 3 min on 2 cores | {measured} | {met} |"
    )
    return lines


def _conformance_table(conformance: dict[str, Any] | None) -> list[str]:
    if not conformance:
        return ["Not measured yet: `python bench/run.py --conformance ci thorough`."]
    lines = [
        f"`{conformance['command']}` (what `nox -s conformance` runs before its report), "
        f"{conformance['cpus']} cores, measured {conformance['date']} (load average "
        f"{', '.join(f'{v:.2f}' for v in conformance['load_average'])} at the end):",
        "",
        "| profile | wall time | pytest summary | examples per property (pytest's header) |",
        "|---|--:|---|---|",
    ]
    for r in conformance["runs"]:
        minutes, seconds = divmod(round(r["seconds"]), 60)
        examples = r["examples"].removeprefix("refcnn: ")
        lines.append(
            f"| {r['profile']} | {minutes} min {seconds:02d} s | {r['summary']} | {examples} |"
        )
    return lines


def _ratio_table(run: dict[str, Any]) -> list[str]:
    lines = [
        "| op | shape | dtype | refcnn ms | torch ms | ratio [q1, q3] | spread refcnn / torch "
        "| target |",
        "|---|---|---|--:|--:|--:|--:|---|",
    ]
    for r in run["ratios"]:
        target = _verdict(r)
        lines.append(
            f"| {r['op']} | {r['shape']} | {r['dtype']} | {r['refcnn_ms']:.2f} | "
            f"{r['torch_ms']:.2f} | {_ratio(r)} | {r['refcnn_spread']:.0%} / "
            f"{r['torch_spread']:.0%} | {target} |"
        )
    return lines


def _gradcheck_table(run: dict[str, Any]) -> list[str]:
    lines = [
        "| size | elements x / W / b | fwd+bwd ms | directional_fd | torch gradcheck "
        "fast_mode | full_jacobian_fd | torch gradcheck (full) |",
        "|---|---|--:|--:|--:|--:|--:|",
    ]
    for g in run["gradient_checks"]:
        fb = g["forward_backward_ms"]
        e = g["elements"]

        def cell(key: str, g: dict[str, Any] = g, fb: float = fb, e: dict[str, int] = e) -> str:
            if key not in g:
                total = sum(e.values())
                return f"not run (≈ {2 * total} evaluations)"
            return f"{g[key]:.1f} ms = {g[key] / fb:.1f}×"

        lines.append(
            f"| {g['size']} | {e['x']} / {e['weight']} / {e['bias']} | {fb:.2f} | "
            f"{cell('directional_fd_ms')} | {cell('torch_gradcheck_fast_ms')} | "
            f"{cell('full_jacobian_fd_ms')} | {cell('torch_gradcheck_full_ms')} |"
        )
    return lines


def _memory_table(run: dict[str, Any]) -> list[str]:
    lines = [
        "| call | dtype | input x | full im2col | refcnn's chunk buffer | peak | peak / input |",
        "|---|---|--:|--:|--:|--:|--:|",
    ]
    for m in run["peak_memory"]:
        lines.append(
            f"| {m['call']} | {m['dtype']} | {_mib(m['input_bytes'])} | "
            f"{_mib(m['full_im2col_bytes'])} | "
            f"{'—' if m['chunk_bytes'] is None else _mib(m['chunk_bytes'])} | "
            f"{_mib(m['peak_bytes'])} | {m['peak_bytes'] / m['input_bytes']:.1f}× |"
        )
    return lines


def _suite_table(suite: dict[str, Any] | None) -> list[str]:
    if not suite:
        return ["Not measured yet: `python bench/run.py --suite`."]
    lines = [
        f"`{suite['subset']}`, one process, measured {suite['date']} "
        f"(load average {', '.join(f'{v:.2f}' for v in suite['load_average'])}):",
        "",
        "| profile | max_examples | seconds | × dev | pytest summary |",
        "|---|--:|--:|--:|---|",
    ]
    examples = {"dev": 15, "ci": 100, "thorough": 1000}
    dev = next((r["seconds"] for r in suite["runs"] if r["profile"] == "dev"), None)
    for r in suite["runs"]:
        times = f"{r['seconds'] / dev:.1f}" if dev else ""
        lines.append(
            f"| {r['profile']} | {examples.get(r['profile'], '?')} | {r['seconds']:.0f} | "
            f"{times} | {r['summary']} |"
        )
    return lines


def markdown(result: dict[str, Any]) -> str:
    env = result["environment"]
    load = ", ".join(f"{v:.2f}" for v in env["load_average_start"])
    load_end = ", ".join(f"{v:.2f}" for v in env["load_average_end"])
    lines = [
        "# refcnn vs torch CPU: benchmark",
        "",
        f"Generated by `nox -s bench` (`{env['command'].strip()}`) on {env['date']}, "
        f"{env['bench_seconds']:.0f} s: {env['cpu']}, {env['cores']} cores, Python "
        f"{env['python']}, NumPy {env['numpy']} ({env['numpy_blas']}), torch {env['torch']}. "
        f"Load average at the start {load}, at the end {load_end} (the machine is shared).",
        "",
        "Every ratio is refcnn's time over torch's for forward + backward (every gradient), same "
        "arrays, same dtype, same thread count, taken side by side: the median over interleaved "
        "rounds of the per-round ratio, with its interquartile range [q1, q3] as the noise seen; "
        "'spread' is each side's interquartile range over its median time. Below 1, refcnn is "
        f"faster. A ratio whose interquartile range exceeds {NOISY:.0%} of it is 'too noisy to "
        "tell': no verdict. How and why: [docs/performance.md](../docs/performance.md).",
        "",
        "## Targets (issue 9)",
        "",
        "| target | measured | met |",
        "|---|---|---|",
        *_target_rows(result),
    ]
    cores = env["cores"] or 1
    for run in result["runs"]:
        start = run.get("load_average_start", env["load_average_start"])
        end = run["load_average_end"]
        threads = run["threads"]["requested"]
        # at the end the 1-minute load includes this run's own threads
        busy = max(start[0], end[0] - threads) + threads > cores + 0.5
        lines += ["", f"## Ratios, {_threads(run)}", ""]
        lines += [
            f"Load average (1 min) {start[0]:.2f} at the start of this run, {end[0]:.2f} at its "
            f"end, on {cores} cores."
            + (
                " Other processes held the cores: this run's threads had to share them, so its "
                "ratios measure contention as much as code (read them with their [q1, q3])."
                if busy
                else ""
            ),
            "",
            *_ratio_table(run),
        ]
    first = result["runs"][0]
    lines += [
        "",
        f"## Gradient checks on conv2d (float64, {_threads(first)})",
        "",
        "Costs in units of one refcnn forward+backward of the same sample. refcnn's checks "
        "include their rounding-error bounds (the forward on |inputs|, the backward on |g|); "
        "torch.autograd.gradcheck runs torch's conv2d. A full Jacobian takes two evaluations "
        "per input element: 'not run' where that is hours.",
        "",
        *_gradcheck_table(first),
        "",
        "## Peak memory of conv2d (tracemalloc)",
        "",
        "Peak bytes allocated during one call, outputs included, against the input's size; the "
        "book's layout materialises the full im2col matrix, refcnn unfolds a few images at a "
        "time into one reused buffer.",
        "",
        *_memory_table(first),
        "",
        "## The conformance session per hypothesis profile",
        "",
        *_conformance_table(result.get("conformance")),
        "",
        "## Suite time per hypothesis profile",
        "",
        *_suite_table(result.get("suite")),
        "",
    ]
    return "\n".join(lines)


def write_reports(result: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    (out / "bench.md").write_text(markdown(result))
