"""The callbacks every recipe attaches: a progress bar with one readable line per log instead of
printed dicts, the QAT warm-up, the watchdog (divergence and loss_watchdog_*), early stopping, LISA's
layer draws and the first-step checkpoint."""

import logging
import math

from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from axo.config import Config

log = logging.getLogger("axo")

SHOWN = ("loss", "eval_loss", "learning_rate", "grad_norm", "epoch")


def format_logs(logs: dict, step: int, max_steps: int) -> str:
    parts = [f"step {step}/{max_steps}"]
    for key in SHOWN:
        if key in logs:
            value = logs[key]
            name = "lr" if key == "learning_rate" else key
            parts.append(f"{name} {value:.3g}" if key == "learning_rate" else f"{name} {value:.4f}")
    final = "train_loss" in logs  # transformers times every log once tokens are counted; say it at the end
    parts += [f"{k} {v:.4g}" for k, v in logs.items() if k not in SHOWN and isinstance(v, float)
              and not k.endswith("_per_second") and (final or k != "train_runtime")]
    return " | ".join(parts)


class LineProgress(ProgressCallback):
    """The Trainer's progress bar, with each log as one readable line above it and no second bar
    while evaluating (eval results arrive as a log line)."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and self.training_bar is not None and logs:
            self.training_bar.write(format_logs(logs, state.global_step, state.max_steps))

    def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):
        pass


def attach_callbacks(trainer, cfg: Config) -> None:
    """Swap the Trainer's dict-printing progress for LineProgress (TRL trainers add a printer too);
    hold fake quantization back for `qat.fake_quant_after_n_steps`."""
    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(LineProgress)
    from axo.train.checkpoints import MarkComplete

    t = cfg.train
    trainer.add_callback(Watchdog(t.loss_watchdog_threshold, t.loss_watchdog_patience or 3))
    trainer.add_callback(MarkComplete())
    trainer.add_callback(SaveOnSignal())
    if t.early_stopping_patience:
        from transformers import EarlyStoppingCallback

        trainer.add_callback(EarlyStoppingCallback(early_stopping_patience=t.early_stopping_patience))
    if t.save_first_step:
        trainer.add_callback(SaveFirstStep())
    if cfg.lora.lisa_n_layers:
        a = cfg.lora
        trainer.add_callback(LayerSampling(a.lisa_n_layers, a.lisa_step_interval, a.lisa_layers_attribute, t.seed))
    if cfg.quant.qat and cfg.quant.qat.fake_quant_after_n_steps:
        from axo.model.qat import DelayFakeQuant

        trainer.add_callback(DelayFakeQuant(cfg.quant.qat.fake_quant_after_n_steps))


class Watchdog(TrainerCallback):
    """Stops a run that has gone wrong, before it saves: at once on a non-finite loss or gradient
    norm (or, when a checkpoint is due, non-finite weights), and after `patience` logged losses in a
    row above `loss_watchdog_threshold`. The checkpoint of that step is not written, so the newest
    one on disk is the last good one; `failure` says why, and the recipe ends the run as failed
    (train/outputs.py: stop_if_failed)."""

    def __init__(self, threshold: float | None = None, patience: int = 3):
        self.threshold, self.patience, self.above = threshold, patience, 0
        self.failure: str | None = None

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or self.failure:
            return
        step = state.global_step
        for key in ("loss", "grad_norm"):
            if isinstance(logs.get(key), float) and not math.isfinite(logs[key]):
                return self._stop(control, f"the {key.replace('_', ' ')} became {logs[key]} at step {step}")
        if self.threshold is None or "loss" not in logs:
            return
        self.above = self.above + 1 if logs["loss"] > self.threshold else 0
        if self.above >= self.patience:
            self._stop(control, f"the loss stayed above loss_watchdog_threshold={self.threshold:g} for {self.above} "
                                f"logged steps (step {step}: {logs['loss']:.4f})")

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if control.should_save and not self.failure and model is not None and not _finite(model):
            self._stop(control, f"the weights became non-finite at step {state.global_step}")

    def _stop(self, control, why: str) -> None:
        self.failure = why
        control.should_training_stop, control.should_save = True, False
        log.error("Stopping: %s. No checkpoint is written for this step.", why)


class SaveOnSignal(TrainerCallback):
    """SIGTERM (preemption, scancel, Kubernetes) or Ctrl-C: the step under way finishes, a checkpoint
    is saved, and the run ends (`signal` names it; the recipe exits with 128 + its number). Every
    process stops at the same step: the processes agree on whether a signal came before each step
    ends. A second Ctrl-C stops at once."""

    SIGNALS = ("SIGTERM", "SIGINT")

    def __init__(self):
        self.signal: int | None = None
        self.previous = {}

    def on_train_begin(self, args, state, control, **kwargs):
        import signal
        import threading

        if threading.current_thread() is not threading.main_thread():
            return  # handlers can only be set from the main thread (e.g. not inside Ray's workers' threads)
        for name in self.SIGNALS:
            number = getattr(signal, name)
            self.previous[number] = signal.signal(number, self._received)

    def _received(self, signum, frame):
        import signal

        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if self.signal is None:
            self.signal = signum
            log.warning("%s received: finishing this step, then saving a checkpoint (Ctrl-C again stops at once)",
                        signal.Signals(signum).name)

    def on_step_end(self, args, state, control, **kwargs):
        import signal

        if _agreed(self.signal is not None):
            self.signal = self.signal or signal.SIGTERM  # another process got it
            control.should_save = control.should_training_stop = True

    def on_train_end(self, args, state, control, **kwargs):
        import signal

        for number, handler in self.previous.items():
            signal.signal(number, handler)
        self.previous = {}


def _agreed(flag: bool) -> bool:
    """True on every process if it is true on any."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return flag
    value = torch.tensor(float(flag), device="cuda" if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def _finite(model) -> bool:
    """Every weight that trains finite, on every process (each checks its own shards; all agree, so all
    skip or all write the checkpoint). Frozen weights never change, and a 4-bit base stores its packed
    bytes in a float tensor, where some byte patterns read as NaN."""
    import torch

    with torch.no_grad():
        params = [p.to_local() if hasattr(p, "to_local") else p for p in model.parameters()
                  if p.requires_grad and p.is_floating_point()]
        return not _agreed(not all(bool(torch.isfinite(p).all()) for p in params))


class LayerSampling(TrainerCallback):
    """LISA (arXiv 2403.17919): every `interval` steps, all decoder layers but `n` drawn at random are
    frozen; embeddings, head and norms always train. Frozen parameters get no gradient, so the
    optimizer leaves them (and their moments) alone. The draw depends only on the seed and the
    interval's index: every process draws the same layers, and a resumed run draws what the
    uninterrupted one did (Axolotl draws from numpy's global state)."""

    def __init__(self, n: int, interval: int, attribute: str, seed: int):
        self.n, self.interval, self.attribute, self.seed = n, interval, attribute, seed
        self.period = None

    def layers(self, model):
        import functools

        from axo.errors import AxoError

        try:
            layers = functools.reduce(getattr, self.attribute.split("."), model)
        except AttributeError:
            raise AxoError(f"`lisa_layers_attribute: {self.attribute}`: {type(model).__name__} has no such "
                           "attribute. Fix: the dotted path to its decoder layers, e.g. model.layers or "
                           "model.language_model.layers") from None
        if self.n > len(layers):
            raise AxoError(f"`lisa_n_layers: {self.n}` but the model has {len(layers)} layers at {self.attribute}")
        return layers

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.layers(model)

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        import random

        period = state.global_step // self.interval
        if period == self.period:
            return
        self.period = period
        layers = self.layers(model)
        chosen = sorted(random.Random(f"lisa-{self.seed}-{period}").sample(range(len(layers)), self.n))
        for i, layer in enumerate(layers):
            layer.requires_grad_(i in chosen)
        log.info("LISA: layers %s of %d train from step %d", chosen, len(layers), state.global_step + 1)


class MemoryRecord(TrainerCallback):
    """What the run's training tensors really took, for run_summary.json next to the plan's
    estimate: the weights, gradients and optimizer states alive at the first optimizer step, and on
    a GPU the peak memory allocated. Every run checks the plan."""

    def __init__(self, planned: dict | None):
        self.planned, self.measured = planned, None

    def on_optimizer_step(self, args, state, control, model=None, optimizer=None, **kwargs):
        if self.measured is None and model is not None:
            from axo.plan import live_state_bytes

            self.measured = live_state_bytes(model, optimizer)

    def summary(self) -> dict:
        import torch

        measured = dict(self.measured or {})
        if torch.cuda.is_available():
            measured["peak_bytes"] = torch.cuda.max_memory_allocated()
        return {"planned": self.planned, "measured": measured or None}


class RunLog(TrainerCallback):
    """What the run report is built from, and the report (axo.run_report): each log line with the
    tokens seen and the wall time (axo_log.jsonl; a resumed run drops the lines past its
    checkpoint), the environment, the command and three sample rows at the start
    (report_data.json), and report.html rewritten at each save. A report that fails to build is
    said once and never stops training."""

    ROWS = 3

    def __init__(self, trainer):
        self.trainer, self.failed = trainer, False

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        import json
        import os
        from pathlib import Path

        from axo.run_report import DATA_FILE, LOG_FILE, environment
        from axo.train.outputs import CONFIG_FILE

        out = Path(args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        log = out / LOG_FILE
        kept = [line for line in (log.read_text().splitlines() if log.exists() and state.global_step else [])
                if json.loads(line).get("step", 0) <= state.global_step]
        log.write_text("".join(line + "\n" for line in kept))
        data = {"environment": environment(), "command": os.environ.get("AXO_COMMAND"),
                "reproduce": f"axo train {out / CONFIG_FILE}", **self._rows()}
        (out / DATA_FILE).write_text(json.dumps(data, ensure_ascii=False))

    def _rows(self) -> dict:
        from axo.report import token_pieces

        dataset, tokenizer = self.trainer.train_dataset, self.trainer.processing_class
        tokenizer = getattr(tokenizer, "tokenizer", tokenizer)  # a processor's
        columns = getattr(dataset, "column_names", None) or []
        if "input_ids" not in columns:
            return {}
        lengths = [len(ids) for ids in dataset.select(range(min(len(dataset), 20000)))["input_ids"]]
        if "labels" not in columns:
            return {"lengths": lengths}
        rows = [{"index": i, "tokens": (pieces := token_pieces(tokenizer, dataset[i])),
                 "trained": sum(trained for _, trained in pieces)} for i in range(min(self.ROWS, len(dataset)))]
        return {"lengths": lengths, "rows": rows}

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            import json
            import time
            from pathlib import Path

            from axo.run_report import LOG_FILE

            entry = {**logs, "step": state.global_step, "epoch": state.epoch,
                     "tokens_seen": state.num_input_tokens_seen or None, "time": time.time()}
            with open(Path(args.output_dir) / LOG_FILE, "a") as f:
                f.write(json.dumps(entry) + "\n")

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.write(args.output_dir)

    def write(self, output_dir) -> bool:
        from axo.run_report import write_report

        try:
            write_report(output_dir)
            return True
        except Exception as err:  # the report is for people; training goes on without it
            if not self.failed:
                log.warning("report.html could not be written (%s: %s)", type(err).__name__, err)
            self.failed = True
            return False


class SaveFirstStep(TrainerCallback):
    """`save_first_step`: a checkpoint after step 1, so a broken save shows at once, not hours later."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 1:
            control.should_save = True


class GenerationEval(TrainerCallback):
    """`do_causal_lm_eval`: after each eval, greedy-generate the first answer of every eval row from
    the text before it, score the answers against the rows' own (eval_causal_lm_metrics) and log the
    scores like eval_loss; `eval_table_size` rows are written with their prompt, expected and
    generated answer. Runs on the main process only (the others wait at the next step)."""

    def __init__(self, trainer, tokenizer, rows, cfg: Config, stop_ids: list[int]):
        self.trainer, self.tokenizer, self.rows, self.cfg, self.stop_ids = trainer, tokenizer, rows, cfg, stop_ids

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if not state.is_world_process_zero:
            return
        t = self.cfg.train
        samples = generate_answers(self.trainer.model, self.tokenizer, self.rows, t.eval_max_new_tokens, self.stop_ids)
        scores = score_answers(samples, t.eval_causal_lm_metrics, (metrics or {}).get("eval_loss"))
        self.trainer.log({f"eval_{name}": value for name, value in scores.items()})
        if t.eval_table_size:
            _write_samples(samples[: t.eval_table_size], args.output_dir, state.global_step, self.cfg)


def generate_answers(model, tokenizer, rows, max_new_tokens: int, stop_ids: list[int]) -> list[dict]:
    """For each row with a trained answer: its prompt (the text before the first trained token), the
    expected answer (the first trained run, end token included) and the greedy answer (through the
    first stop token), and whether the two are the same tokens."""
    import torch

    from axo.train.evaluate import first_answer

    was_training = model.training
    model.eval()
    out = []
    for row in rows:
        span = first_answer(row["labels"])
        if span is None:
            continue
        start, end = span
        prompt = torch.tensor([row["input_ids"][:start]], device=model.device)
        with torch.no_grad():
            generated = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
                                       max_new_tokens=max_new_tokens, eos_token_id=stop_ids,
                                       pad_token_id=tokenizer.pad_token_id)
        answer = generated[0, start:].tolist()
        expected = row["input_ids"][start:end]
        out.append({"prompt": tokenizer.decode(row["input_ids"][:start]), "exact": answer[:len(expected)] == expected,
                    "expected": tokenizer.decode(expected, skip_special_tokens=True),
                    "generated": tokenizer.decode(answer, skip_special_tokens=True)})
    model.train(was_training)
    return out


def score_answers(samples: list[dict], metrics: list[str], eval_loss: float | None) -> dict:
    """Corpus scores of generated against expected answers (sacrebleu's BLEU, chrF and TER)."""
    import math

    predictions = [s["generated"].strip() for s in samples]
    references = [s["expected"].strip() for s in samples]
    scores = {}
    if {"sacrebleu", "chrf", "ter"} & set(metrics):
        from sacrebleu.metrics import BLEU, CHRF, TER

        for name, metric in (("sacrebleu", BLEU), ("chrf", CHRF), ("ter", TER)):
            if name in metrics:
                scores[name] = metric().corpus_score(predictions, [references]).score
    if "exact_match" in metrics:
        scores["exact_match"] = sum(s["exact"] for s in samples) / max(len(samples), 1)
    if "perplexity" in metrics and eval_loss is not None:
        scores["perplexity"] = math.exp(eval_loss)
    return scores


def _write_samples(samples: list[dict], output_dir: str, step: int, cfg: Config) -> None:
    import json
    from pathlib import Path

    folder = Path(output_dir) / "eval_samples"
    folder.mkdir(parents=True, exist_ok=True)
    shown = [{k: s[k] for k in ("prompt", "expected", "generated")} for s in samples]
    (folder / f"step-{step}.jsonl").write_text("".join(json.dumps(s, ensure_ascii=False) + "\n" for s in shown))
    if "wandb" in cfg.logging.report_to:
        import wandb

        if wandb.run is not None:
            wandb.log({"eval_samples": wandb.Table(columns=["prompt", "expected", "generated"],
                                                    data=[list(s.values()) for s in shown])})
