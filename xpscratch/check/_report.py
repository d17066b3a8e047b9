"""The report as text: the header, then one row per group, backend and dtype."""

from __future__ import annotations

from typing import Any

from ._policy import FACTOR, FLOAT32, FLOAT32_TF32, FLOOR_ULPS, SAMPLES

POLICY = (
    f"policy: bits identical; values within {FACTOR:g} x the noise band (NumPy in the "
    f"dtype, plain and {SAMPLES} runs with inputs nudged by an ulp) + {FLOOR_ULPS:g} ulp of "
    f"the float64 truth; float32 optimizer/training runs over {FLOAT32.float32_steps} "
    f"steps; TF32 adds rtol {FLOAT32_TF32.op:g} / {FLOAT32_TF32.trajectory:g} / "
    f"{FLOAT32_TF32.loss:g}; accuracies within the band + one sample"
)


def _num(v: float) -> str:
    return "0" if v == 0 else f"{v:.1e}"


def format_report(report: Any) -> str:
    h = report.header
    lines = [
        f"xpscratch {h['xpscratch']} check ({h['battery']} battery), Python {h['python']}, "
        f"NumPy {h['numpy']}, array-api-compat {h['array_api_compat']}",
        f"{h['platform']}; {h['cpu']} ({h['cpu_count']} CPUs); BLAS {h['blas']}; "
        f"threads {h['threads']}",
        f"dtypes {', '.join(h['dtypes'])}; TF32 {'allowed' if h['allow_tf32'] else 'off'}; "
        "reference: NumPy float64 truth and noise band, same run",
        POLICY,
    ]
    for t in report.targets:
        versions = ", ".join(f"{k} {v}" for k, v in t.info.get("versions", {}).items())
        extra = [
            f"{k} {t.info[k]}"
            for k in ("gpu", "driver", "cuda", "cuda_runtime", "torch_threads", "device_kind")
            if k in t.info
        ]
        if "matmul_precision_used" in t.info:
            extra.append(
                f"matmul precision {t.info['matmul_precision_used']} "
                f"(found: {t.info['matmul_precision_found']})"
            )
        lines.append(
            f"  {t.label}: {versions}; device {t.info['device']}"
            + ("; " + "; ".join(extra) if extra else "")
            + f"; {t.seconds:.1f} s"
        )
    for spec, why in report.unusable.items():
        lines.append(f"  {spec}: NOT USABLE: {why}")
    lines.append("")
    head = (
        "backend",
        "dtype",
        "group",
        "cases",
        "max abs",
        "max rel",
        "of tol",
        "tolerance",
        "result",
        "time",
    )
    rows = [head]
    details = []
    for t in report.targets:
        for dtype in dict.fromkeys(g.dtype for g in t.groups):
            groups = [g for g in t.groups if g.dtype == dtype]
            shown = [g for g in groups if not (g.name == "gpu" and g.status == "SKIP")]
            if shown and all(g.status == "SKIP" for g in shown):
                why = next(g.skipped for g in shown)  # one row: every group skipped, one reason
                rows.append((t.label, dtype, "all", "0", "-", "-", "-", "-", "SKIP", "0.0s"))
                details.append(f"SKIP {t.label} {dtype}: {why}")
                continue
            for g in shown:
                worst = f"{g.worst:.0%}" if g.worst != float("inf") else "inf"
                rows.append(
                    (
                        g.target,
                        g.dtype,
                        g.name,
                        str(g.cases),
                        _num(g.max_abs),
                        _num(g.max_rel),
                        worst,
                        g.tolerance,
                        g.status,
                        f"{g.seconds:.1f}s",
                    )
                )
                if g.skipped:
                    details.append(f"SKIP {g.target} {g.dtype} {g.name}: {g.skipped}")
                for f in g.failures[:10]:
                    details.append(f"FAIL {g.target} {g.dtype} {g.name}: {f.case}: {f.detail}")
                if len(g.failures) > 10:
                    details.append(
                        f"FAIL {g.target} {g.dtype} {g.name}: ... and "
                        f"{len(g.failures) - 10} more (all in --json)"
                    )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    for i, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    if any(g.name == "gpu" and g.status == "SKIP" for g in report.groups):
        details.append("gpu group: runs on GPU backends only (sync/transfer check, TF32)")
    if details:
        lines += [""] + details
    lines += [""] + verdict_lines(report)
    return "\n".join(lines)


VERDICTS = {0: "PASSED", 1: "FAILED", 2: "NOT USABLE", 3: "NOTHING CHECKED"}


def verdict_lines(report: Any) -> list[str]:
    """The closing lines: what checked nothing, and the verdict with its exit status."""
    counts = {s: sum(g.status == s for g in report.groups) for s in ("PASS", "FAIL", "SKIP")}
    # each skipped backend and dtype already has its SKIP line, with why, above
    lines = [f"NOTHING CHECKED: {why}" for why in report.nothing_checked]
    status = report.exit_status
    lines.append(
        f"{VERDICTS[status]}: {counts['PASS']} groups passed, {counts['FAIL']} failed, "
        f"{counts['SKIP']} skipped (exit status {status})"
    )
    return lines
