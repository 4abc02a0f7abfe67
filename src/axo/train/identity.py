"""What a run's output_dir holds, recorded at the start of training in `axo_run.json`: the method,
whether an adapter or the whole model trains, and every config key that decides what is learned.
A later run into the same folder is checked against it before any data or model work: resuming
with different training keys, or writing a full model over an adapter run (or the reverse), stops
with the keys that differ and the fix; `evaluate` and `inference` load what the record says."""

import json
import logging
import shutil
from pathlib import Path

from axo.config import Config
from axo.errors import AxoError

log = logging.getLogger("axo")
RUN_FILE = "axo_run.json"
# The files a finished or checkpointed run leaves, removed by `overwrite_output_dir`.
OUTPUTS = ("checkpoint-*", "adapter_config.json", "adapter_model.safetensors", "model*.safetensors",
           "model.safetensors.index.json", "config.json", "generation_config.json", "run_summary.json", RUN_FILE,
           "axo_config.yml", "merged", "quantized")


def record(cfg: Config) -> dict:
    from axo.config.compat import learned

    keys = {k: v for k, v in cfg.to_flat().items() if learned(k)}
    return {"method": cfg.method.name, "trains": _trains(bool(cfg.lora.adapter)),
            "keys": json.loads(json.dumps(keys, default=str))}


def _trains(adapter: bool) -> str:
    return "an adapter" if adapter else "the whole model"


def check_run(cfg: Config, resume: str | None) -> None:
    """Before any data or model work: this run may go into output_dir (see the module's doc)."""
    out = Path(cfg.train.output_dir)
    if cfg.train.overwrite_output_dir:
        _clear(out)
        return
    now = record(cfg)
    earlier = _read(out)
    if earlier is None:
        earlier_adapter = (out / "adapter_config.json").exists()
        earlier_full = (out / "config.json").exists() and (out / "model.safetensors").exists()
        if earlier_adapter or earlier_full:  # a run from before axo kept records
            earlier = {"trains": _trains(earlier_adapter), "keys": None}
    if earlier is None:
        return
    fix = f"Fix: a new `output_dir`, or `--overwrite_output_dir true` to replace what is in {out}."
    if earlier["trains"] != now["trains"]:
        raise AxoError(f"`output_dir` {out} holds a run that trained {earlier['trains']}; this config trains "
                       f"{now['trains']}, and the two would mix (evaluate and inference could load the old one). {fix}")
    inside = resume is not None and Path(resume).resolve().parent == out.resolve()
    if not inside or earlier["keys"] is None:
        return
    changed = {k for k in earlier["keys"].keys() | now["keys"].keys()
               if earlier["keys"].get(k) != now["keys"].get(k)}
    if not changed:
        return
    shown = "; ".join(f"`{k}`: {earlier['keys'].get(k)!r} then, {now['keys'].get(k)!r} now" for k in sorted(changed)[:8])
    more = f" (and {len(changed) - 8} more)" if len(changed) > 8 else ""
    if cfg.train.resume_from_checkpoint:
        log.warning("Resuming %s with keys that differ from the run that wrote it: %s%s", resume, shown, more)
        return
    raise AxoError(f"auto-resume would continue {resume} with a config that trains differently: {shown}{more}. "
                   f"{fix} To continue that checkpoint with the new keys anyway, name it in "
                   "`resume_from_checkpoint`.")


def write_run(cfg: Config) -> None:
    """The record, written before any data or model work: this also proves output_dir writable."""
    out = Path(cfg.train.output_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / RUN_FILE).write_text(json.dumps(record(cfg), indent=1))
    except OSError as err:
        raise AxoError(f"`output_dir` {str(out)!r} cannot be written ({err.strerror or err}). Fix: a folder you can "
                       "write to, with room for checkpoints.") from None


def trains_adapter(output_dir: Path) -> bool | None:
    """What the run record of `output_dir` says it trained (None: no record)."""
    earlier = _read(output_dir)
    return None if earlier is None else earlier["trains"] == _trains(True)


def _read(out: Path) -> dict | None:
    try:
        return json.loads((out / RUN_FILE).read_text())
    except (OSError, ValueError):
        return None


def _clear(out: Path) -> None:
    removed = [p for pattern in OUTPUTS for p in out.glob(pattern)]
    for path in removed:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    if removed:
        log.warning("overwrite_output_dir: removed %d files and folders of the earlier run in %s", len(removed), out)
