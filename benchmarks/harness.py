"""What every section of ``benchmarks/run.py`` shares: the run's settings, its report, its models.

Importing it (through :mod:`common`) sets the offline switches before gradio or torchvision load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from common import Stat, check_at_most, interleaved, photo  # first: it sets the offline switches

import torch
from PIL import Image

import core

#: The thread count the targets are set for: the two vCPUs of a CPU Space.
THREADS = 2


@dataclass
class Report:
    """The run's table rows and PASS/MISS verdicts, printed at the end."""

    rows: list[tuple[str, str, str, str, str]] = field(default_factory=list)  # section, what, figure, target, result
    verdicts: list[tuple[str, bool, str]] = field(default_factory=list)

    def row(self, section: str, what: str, figure: str, target: str = "", result: str = "") -> None:
        self.rows.append((section, what, figure, target, result))

    def verdict(self, name: str, passed: bool, margin: str) -> str:
        self.verdicts.append((name, passed, margin))
        return f"{'PASS' if passed else 'MISS'} ({margin})"

    def markdown(self, header: str) -> str:
        lines = [header, "", "| Section | Measurement | Median (IQR) | Target | Result |", "|---|---|---|---|---|"]
        lines += [f"| {section} | {what} | {figure} | {target} | {result} |" for section, what, figure, target, result in self.rows]
        return "\n".join(lines)


@dataclass
class Run:
    """One run's settings, as every section reads them. ``--smoke`` only checks that everything runs."""

    smoke: bool
    reps: int  # timed repetitions per section
    threads: int
    report: Report = field(default_factory=Report)

    @property
    def top_k(self) -> int:
        return 2 if self.smoke else 5

    @property
    def warmup(self) -> int:
        """Untimed repetitions before the timed ones."""
        return 0 if self.smoke else 1

    @property
    def judge(self) -> bool:
        """Whether PASS/MISS is judged: only at the targets' thread count, and not in --smoke."""
        return self.threads == THREADS and not self.smoke

    @property
    def models(self) -> list[str]:
        return ["resnet18"] if self.smoke else ["resnet18", "resnet50"]

    def view_image(self) -> Image.Image:
        """The picture of the first-view and switch sections."""
        return photo(64, 64) if self.smoke else photo(512, 350)

    def interleaved(self, impls: dict[str, Callable[[], Any]], reps: int | None = None) -> tuple[dict[str, Stat], dict[str, Any]]:
        """:func:`common.interleaved` with this run's repetitions and warm-up."""
        return interleaved(impls, self.reps if reps is None else reps, self.warmup)


def report_resnet50_target(run: Run, section: str, stats: dict[str, Stat], target_ms: float, what: str, width: int, digits: int = 0) -> None:
    """Prints and reports each median; the resnet50 ones are judged against ``target_ms``."""
    for name, stat in stats.items():
        target = result = ""
        if name.startswith("resnet50") and run.judge:
            passed, margin = check_at_most(stat.median * 1e3, target_ms, "ms")
            target, result = f"<= {target_ms:.0f} ms", run.report.verdict(f"{what} ({name})", passed, margin)
        print(f"  {name:{width}s} {stat.ms()}  {result}")
        run.report.row(section, name, stat.ms_short(digits), target, result)


def random_model(name: str) -> torch.nn.Module:
    """The app's own untrained model (seeded; ViT's zero head made non-degenerate): speed does
    not depend on the weights, and maps that are not all zero make the agreement checks mean something."""
    return core.load_model(name, weights="random", device="cpu")
