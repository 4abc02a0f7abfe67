"""Which checkpoint a run resumes from, and how a checkpoint is known to be complete.

transformers writes a checkpoint folder file by file, so a crash, a kill or a full disk during a
save leaves a folder that looks like a checkpoint and is not one. Once every process has finished
writing, axo adds `axo_checkpoint.json` listing each file and its size (`MarkComplete`). Auto-resume
takes the newest checkpoint whose list still holds, says which newer ones it skipped and why, and
removes those (they are unusable, and the run would write the same step again)."""

import errno
import json
import logging
import shutil
from contextlib import contextmanager
from pathlib import Path

from transformers import TrainerCallback

from axo.config.training import TrainingConfig
from axo.errors import AxoError

log = logging.getLogger("axo")
MARKER = "axo_checkpoint.json"


def resume_checkpoint(t: TrainingConfig) -> str | None:
    if t.resume_from_checkpoint:
        folder = Path(t.resume_from_checkpoint)
        if not (folder / "trainer_state.json").exists():
            raise AxoError(f"`resume_from_checkpoint`: {t.resume_from_checkpoint!r} is not a "
                           "checkpoint folder (no trainer_state.json). Fix: point it at "
                           f"{t.output_dir}/checkpoint-<step>.")
        if (problem := damage(folder)) and (folder / MARKER).exists():
            raise AxoError(f"`resume_from_checkpoint`: {folder} is damaged ({problem}). Fix: an older checkpoint.")
        return t.resume_from_checkpoint
    if t.auto_resume_from_checkpoints and Path(t.output_dir).is_dir():
        return newest_complete(Path(t.output_dir))
    return None


def checkpoints(output_dir: Path) -> list[Path]:
    """checkpoint-<step> folders, newest first."""
    found = [p for p in output_dir.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]), reverse=True)


def newest_complete(output_dir: Path) -> str | None:
    """The newest checkpoint that is whole. Checkpoints written before axo marked them (no marker in
    any) count as whole when their trainer_state.json reads."""
    found = checkpoints(output_dir)
    marked = any((p / MARKER).exists() for p in found)
    for folder in found:
        problem = damage(folder) if marked else _legacy_damage(folder)
        if problem is None:
            log.info("Resuming from %s (auto_resume_from_checkpoints)", folder)
            return str(folder)
        log.warning("Skipping %s: %s. Removing it: a checkpoint cut off while it was written cannot be resumed, "
                    "and the run writes that step again.", folder, problem)
        shutil.rmtree(folder, ignore_errors=True)
    return None


def damage(folder: Path) -> str | None:
    """Why `folder` is not a complete checkpoint, or None when it is."""
    marker = folder / MARKER
    if not marker.exists():
        return f"it was not finished (no {MARKER})"
    try:
        files = json.loads(marker.read_text())["files"]
    except (ValueError, KeyError):
        return f"its {MARKER} is unreadable"
    for name, size in files.items():
        path = folder / name
        if not path.exists():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} has {path.stat().st_size} bytes, {size} were written"
    return None


def _legacy_damage(folder: Path) -> str | None:
    try:
        json.loads((folder / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return "its trainer_state.json is missing or unreadable"
    return None


@contextmanager
def disk_full_reported(output_dir: str):
    """A full disk (or quota) during training becomes an error that says so, with the free space,
    what a checkpoint of this run takes and the checkpoint to resume from; the half-written one has
    no marker, so auto-resume skips it."""
    try:
        yield
    except (OSError, RuntimeError) as err:
        if not _disk_full(err):
            raise
        folder = Path(output_dir)
        free = shutil.disk_usage(folder if folder.exists() else folder.parent).free
        whole = [p for p in checkpoints(folder) if damage(p) is None]
        size = sum(json.loads((whole[0] / MARKER).read_text())["files"].values()) if whole else None
        need = f"a checkpoint of this run takes {size / 1e6:.1f} MB" if size else "no checkpoint was completed yet"
        resume = (f"the last complete checkpoint is {whole[0]}; `auto_resume_from_checkpoints: true` resumes from it"
                  if whole else "nothing can be resumed")
        raise AxoError(f"the disk holding {folder} is full ({free / 1e6:.0f} MB free; {need}): {err}. {resume}. "
                       "Fix: free space there (or set `save_total_limit`, or another `output_dir`), then run again."
                       ) from None


def _disk_full(err: BaseException) -> bool:
    text = str(err)
    return (isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT)) or \
        "No space left on device" in text or "basic_ios::clear" in text  # torch's zip writer, out of space


class MarkComplete(TrainerCallback):
    """After every process has written its part of a checkpoint, the main process lists the
    folder's files and sizes in axo_checkpoint.json: the checkpoint exists from that moment."""

    def on_save(self, args, state, control, **kwargs):
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.barrier()
        if not state.is_world_process_zero:
            return
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if not folder.is_dir():
            return
        files = {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*"))
                 if p.is_file() and p.name != MARKER}
        (folder / f"{MARKER}.tmp").write_text(json.dumps({"step": state.global_step, "files": files}, indent=1))
        (folder / f"{MARKER}.tmp").replace(folder / MARKER)  # atomic: the marker is whole or absent
