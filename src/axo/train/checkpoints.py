"""Which checkpoint a run resumes from."""

import logging
from pathlib import Path

from axo.config.training import TrainingConfig
from axo.errors import AxoError

log = logging.getLogger("axo")


def resume_checkpoint(t: TrainingConfig) -> str | None:
    if t.resume_from_checkpoint:
        if not (Path(t.resume_from_checkpoint) / "trainer_state.json").exists():
            raise AxoError(f"`resume_from_checkpoint`: {t.resume_from_checkpoint!r} is not a "
                           "checkpoint folder (no trainer_state.json). Fix: point it at "
                           f"{t.output_dir}/checkpoint-<step>.")
        return t.resume_from_checkpoint
    if t.auto_resume_from_checkpoints and Path(t.output_dir).is_dir():
        from transformers.trainer_utils import get_last_checkpoint

        last = get_last_checkpoint(t.output_dir)
        if last:
            log.info("Resuming from %s (auto_resume_from_checkpoints)", last)
        return last
    return None
