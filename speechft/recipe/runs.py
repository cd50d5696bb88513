"""The run folder: where a run writes, the INCOMPLETE marker, `latest`, stage timing and memory.

The run folder is the product's contract (DESIGN.md): a folder that did not finish carries an
INCOMPLETE marker and `runs/<recipe>/latest` only ever points to a finished run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from ..config import RecipeConfig
from ..errors import SpeechftError
from ..heap import release_free_memory

log = logging.getLogger("speechft")
INCOMPLETE_MARKER = "INCOMPLETE"


class StageTimer:
    """Wall time per stage, printed as each ends."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str):
        start = time.perf_counter()
        log.info("== stage %s", name)
        yield
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
        held = current_rss_mb()
        release_free_memory()
        # The peak so far shows which stage set the run's peak memory; the current RSS before and
        # after returning freed heap shows how much of it the next stages still hold.
        log.info("== stage %s done in %.1f s (peak RSS so far %.0f MB; now %.0f MB, %.0f MB after returning free heap)",
                 name, self.seconds[name], peak_rss_mb(), held, current_rss_mb())


def peak_rss_mb() -> float:
    """Peak resident memory of this process or of any finished child (data preparation), in MB."""
    return max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024  # KiB


def current_rss_mb() -> float:
    """Resident memory of this process now, in MB (0 where /proc is absent)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def prepare_in_subprocess(targets: list[str]) -> None:
    """`speechft prepare` in a child process: the TTS engines' memory (about 1 GB) is returned
    to the system before the model is loaded, instead of staying in this process's heap."""
    done = subprocess.run([sys.executable, "-m", "speechft", "prepare", *targets])
    if done.returncode != 0:
        raise SpeechftError(f"data preparation ({' '.join(targets)}) failed, see the messages above. "
                            f"Fix: run `speechft prepare {' '.join(targets)}` and correct what it reports")


def setup_logging(run_dir: Path, rank: int) -> logging.Handler:
    """Log to the run folder's train.log (other processes: train.rank<N>.log) as well."""
    handler = logging.FileHandler(run_dir / ("train.log" if rank == 0 else f"train.rank{rank}.log"), encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    return handler


def unfinished_runs(recipe_dir: Path) -> list[Path]:
    """Run folders under runs/<recipe> that carry the INCOMPLETE marker, oldest first."""
    if not recipe_dir.is_dir():
        return []
    return sorted(p for p in recipe_dir.iterdir() if p.is_dir() and not p.is_symlink() and (p / INCOMPLETE_MARKER).exists())


def choose_run_dir(cfg: RecipeConfig) -> Path:
    """output_dir, or runs/<recipe>/<timestamp>; with resume, the newest unfinished run."""
    if cfg.output_dir:
        return Path(cfg.output_dir)
    recipe_dir = Path("runs") / cfg.name
    if cfg.resume:
        pending = unfinished_runs(recipe_dir)
        if pending:
            return pending[-1]
        log.warning("resume: no unfinished run under %s; starting a new one", recipe_dir)
    for old in unfinished_runs(recipe_dir):
        log.warning("unfinished run (killed or failed; not a result): %s. Resume it with --resume", old)
    return recipe_dir / datetime.now().strftime("%Y%m%d-%H%M%S")


def point_latest(run_dir: Path) -> None:
    """Atomically repoint runs/<recipe>/latest at a finished run (symlink swap)."""
    latest = run_dir.parent / "latest"
    tmp = run_dir.parent / f".latest.tmp{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(run_dir.name)
    tmp.replace(latest)
