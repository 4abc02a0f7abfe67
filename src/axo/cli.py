"""`axo` command line. One thin function per command; heavy libraries are imported inside the
commands, so `axo --help` stays instant."""

import os
import sys
from typing import Optional

import typer

from axo.errors import AxoError, Interrupted

app = typer.Typer(
    help="Fine-tune and post-train LLMs from one YAML file (Axolotl's config format).",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
)
# Unknown `--key value` pairs after the config path are config overrides.
OVERRIDES = {"allow_extra_args": True, "ignore_unknown_options": True}
CONFIG = typer.Argument(..., help="Path to the YAML config.", show_default=False)


def _load(config: str, ctx: typer.Context, overrides: list[str] | None = None):
    from axo.config import load

    return load(config, ctx.args if overrides is None else overrides)


def _split_passthrough(args: list[str]) -> tuple[list[str], list[str]]:
    """Config overrides, and the launcher's own arguments after `--`."""
    argv = sys.argv
    if "--" in argv:
        tail = argv[argv.index("--") + 1:]
        head = args[:len(args) - len(tail)] if tail and args[-len(tail):] == tail else args
        return [a for a in head if a != "--"], tail
    return args, []


@app.command(context_settings=OVERRIDES)
def train(
    ctx: typer.Context,
    config: str = CONFIG,
    num_processes: int = typer.Option(1, "--num-processes", help="Training processes per node (e.g. GPUs)."),
    launcher: str = typer.Option("accelerate", help="accelerate | torchrun | python (no spawning)."),
    nnodes: int = typer.Option(1, help="Machines taking part; run the same command on each."),
    node_rank: int = typer.Option(0, help="This machine's rank, 0 to nnodes-1."),
    main_process_ip: Optional[str] = typer.Option(None, help="Address of the node with rank 0."),
    main_process_port: Optional[int] = typer.Option(None, help="Rendezvous port on the rank-0 node."),
    force: bool = typer.Option(False, help="Train even when the plan says the run cannot fit on this GPU."),
):
    """Train as the config says. Extra `--key value` pairs override config keys; with
    --num-processes or --nnodes, the launcher starts the processes (its own options go after `--`)."""
    from axo.parallel.launch import LAUNCHERS, Launch, start

    overrides, passthrough = _split_passthrough(ctx.args)
    if force:  # read by every training process the launcher starts (axo.plan.check_before_training)
        os.environ["AXO_FORCE"] = "1"
    if launcher not in LAUNCHERS:
        raise AxoError(f"--launcher {launcher!r}: use one of {', '.join(LAUNCHERS)}")
    launch = Launch(launcher, num_processes, nnodes, node_rank, main_process_ip, main_process_port, passthrough)
    status = start(config, overrides, launch)
    if status:
        sys.exit(status)


@app.command(context_settings=OVERRIDES)
def preprocess(
    ctx: typer.Context,
    config: str = CONFIG,
    debug: bool = typer.Option(False, help="Show a few rows token by token: trained in green, masked in red."),
    rows: int = typer.Option(3, help="How many rows --debug shows."),
):
    """Prepare the datasets as training will (any method), cache them, print their statistics."""
    from axo.data.chat import load_processing
    from axo.data.prepare import prepare
    from axo.report import print_data_stats, print_token_view

    cfg = _load(config, ctx)
    text = load_processing(cfg)
    data = prepare(cfg, text.tokenizer, text.chat, text.processor)
    if debug:
        if cfg.data.pretraining_dataset or "labels" not in data.train.column_names:
            raise AxoError("--debug shows rows of tokens and labels; this config's rows have none "
                           f"({cfg.method.name} rows are tokenized by the trainer, and streamed data is not stored).")
        print_token_view(text.tokenizer, data.train, rows)
    print_data_stats(data)


@app.command(context_settings=OVERRIDES)
def validate(ctx: typer.Context, config: str = CONFIG):
    """Check the config and print it with every default filled in."""
    import yaml

    cfg = _load(config, ctx)
    typer.echo(yaml.safe_dump(cfg.to_flat(), sort_keys=False), nl=False)
    typer.secho(f"{config}: valid", fg="green", err=True)


@app.command()
def migrate(config: str = CONFIG,
            out: Optional[str] = typer.Option(None, help="Where to write it (default: NAME.migrated.yml beside it)."),
            in_place: bool = typer.Option(False, "--in-place", help="Replace the config itself.")):
    """Write the config in today's spelling: old names renamed, keys no Axolotl release read removed, a key
    set twice kept once; comments stay. Prints the diff and why each line changed. The result loads into
    exactly the config the original does, and passes `strict: true`."""
    from pathlib import Path

    from axo.config.migrate import migrate as run

    path = Path(config)
    if not path.is_file():
        raise AxoError(f"config file {config!r} does not exist")
    done = run(path)
    if not done.changes:
        typer.echo(f"{config} is already in today's spelling; nothing to change")
        return
    target = path if in_place else Path(out) if out else path.with_name(f"{path.stem}.migrated{path.suffix}")
    typer.echo(done.diff(path.read_text(), path.name), nl=False)
    typer.echo("\nwhy:\n" + "\n".join(f"  - {c}" for c in done.changes))
    target.write_text(done.text)
    typer.secho(f"written to {target}: it loads into the same config as {config}, and passes `strict: true`",
                fg="green", err=True)


@app.command(context_settings=OVERRIDES)
def plan(
    ctx: typer.Context,
    config: str = CONFIG,
    gpu: Optional[str] = typer.Option(None, help="Plan for this accelerator (H100-80GB, A100-40GB, L4, RTX-4090...)."),
    memory: Optional[float] = typer.Option(None, help="Device memory in GiB (overrides the device's)."),
    num_processes: int = typer.Option(1, "--num-processes", help="Training processes (devices) per run."),
    measure: bool = typer.Option(False, help="Time two of the model's layers here to calibrate the time estimate."),
):
    """What the run will need per device (parameters, memory by kind, tokens, steps, time) and
    whether it fits, from the config alone: no weights are read."""
    from axo.plan import device_of, make_plan, render

    cfg = _load(config, ctx)
    typer.echo(render(make_plan(cfg, device_of(gpu, memory), num_processes, measure), config))


@app.command()
def report(
    folders: list[str] = typer.Argument(..., help="Run folders (output_dir of axo train).", show_default=False),
    out: Optional[str] = typer.Option(None, help="Where to write it (default: FOLDER/report.html for one run, "
                                      "./axo_report.html for several)."),
):
    """Rebuild a run's report.html from its folder, or overlay several runs in one page: their curves
    against tokens seen, and the config keys that differ."""
    from pathlib import Path

    from axo.run_report import read_run, write_report

    runs = [read_run(Path(folder)) for folder in folders]
    target = out or (None if len(runs) == 1 else "axo_report.html")
    typer.echo(f"wrote {write_report(folders[0], runs, target)}")


@app.command("config-schema")
def config_schema():
    """Print the JSON schema of the config file, for editors."""
    import json

    from axo.config.schema import flat_schema

    typer.echo(json.dumps(flat_schema(), indent=2))


@app.command(context_settings=OVERRIDES)
def inference(
    ctx: typer.Context,
    config: str = CONFIG,
    prompt: Optional[str] = typer.Option(None, help="One prompt; without it, read prompts from stdin."),
    checkpoint: Optional[str] = typer.Option(None, help="Model or adapter folder (default: output_dir)."),
    max_new_tokens: int = typer.Option(256, help="Most tokens to generate."),
    temperature: float = typer.Option(0.0, help="0 means greedy decoding."),
    gguf: Optional[str] = typer.Option(None, help="Answer with llama.cpp from this exported GGUF instead."),
):
    """Generate with the trained model (base + adapter, or the full model), streaming tokens; with
    --gguf, llama.cpp answers from the export, with the same prompt format and stop tokens."""
    from axo.infer.generate import interactive, load_generator, load_gguf_generator

    gen = load_gguf_generator(_load(config, ctx), gguf) if gguf else load_generator(_load(config, ctx), checkpoint)
    if prompt is not None:
        gen.stream(prompt, max_new_tokens, temperature)
    else:
        interactive(gen, max_new_tokens, temperature)


@app.command("merge-lora", context_settings=OVERRIDES)
def merge_lora(ctx: typer.Context, config: str = CONFIG,
               checkpoint: Optional[str] = typer.Option(None, help="Adapter folder (default: output_dir).")):
    """Merge the trained LoRA adapter into the base model; writes output_dir/merged."""
    from axo.export.merge import merge_lora as run

    out = run(_load(config, ctx), checkpoint)
    typer.echo(f"merged model written to {out}")


@app.command("merge-sharded-fsdp-weights", context_settings=OVERRIDES)
def merge_sharded_fsdp_weights(ctx: typer.Context, config: str = CONFIG, checkpoint: Optional[str] = typer.Option(
        None, help="Checkpoint folder holding pytorch_model_fsdp_0/ (default: the newest in output_dir).")):
    """Join an FSDP checkpoint's shards into one plain transformers model in output_dir/merged."""
    from axo.export.merge import merge_fsdp_shards

    out = merge_fsdp_shards(_load(config, ctx), checkpoint)
    typer.echo(f"merged model written to {out}")


@app.command(context_settings=OVERRIDES)
def quantize(ctx: typer.Context, config: str = CONFIG,
             model: Optional[str] = typer.Option(
                 None, help="Model or adapter folder (default: the trained model in output_dir, else base_model).")):
    """Quantize the trained model with torchao (`quantization:` block, else `qat:`); writes
    output_dir/quantized, which loads with plain transformers."""
    from axo.export.quantize import quantize_model

    out = quantize_model(_load(config, ctx), model)
    typer.echo(f"quantized model written to {out}")


@app.command(context_settings=OVERRIDES)
def export(ctx: typer.Context, config: str = CONFIG,
           format: str = typer.Option("gguf", "--format", help="gguf (llama.cpp, Ollama, LM Studio)."),
           quant: str = typer.Option("f16", help="f32, f16, bf16, q8_0, q4_0, q4_k_m, q5_k_m, q6_k."),
           checkpoint: Optional[str] = typer.Option(None, help="Model or adapter folder (default: output_dir)."),
           check: bool = typer.Option(True, help="Run check-serving on the export.")):
    """Export the trained model for serving: output_dir/gguf/model-<quant>.gguf and an Ollama Modelfile,
    then check that llama.cpp computes what the trained model does (check-serving)."""
    from axo.export.gguf import export_gguf

    if format != "gguf":
        raise AxoError(f"--format {format!r}: axo exports gguf (for vLLM or SGLang, serve the transformers folder).")
    cfg = _load(config, ctx)
    path = export_gguf(cfg, quant, checkpoint)
    typer.echo(f"GGUF written to {path} (Modelfile next to it)")
    if check:
        _check_serving(cfg, path, checkpoint)


@app.command("check-serving", context_settings=OVERRIDES)
def check_serving(ctx: typer.Context, config: str = CONFIG,
                  gguf: Optional[str] = typer.Option(None, help="The GGUF (default: the newest in output_dir/gguf)."),
                  checkpoint: Optional[str] = typer.Option(None, help="Model or adapter folder (default: output_dir).")):
    """Check that the exported GGUF, run by llama.cpp, computes what the trained model does: token ids,
    chat template, stop tokens, logits and greedy generations on held-out rows."""
    _check_serving(_load(config, ctx), gguf, checkpoint)


def _check_serving(cfg, gguf, checkpoint) -> None:
    from axo.export.serving import check_serving as run

    report = run(cfg, gguf, checkpoint)
    typer.echo(report.table())
    if report.problems:
        raise AxoError("the export does not serve what was trained: " + "; ".join(report.problems))


@app.command(context_settings=OVERRIDES)
def evaluate(
    ctx: typer.Context,
    config: str = CONFIG,
    checkpoint: Optional[str] = typer.Option(None, help="Model or adapter folder (default: output_dir)."),
    exact_match: bool = typer.Option(False, help="Also generate each eval answer and count exact matches."),
    limit: Optional[int] = typer.Option(None, help="Evaluate only the first N eval rows."),
):
    """Eval loss and perplexity on the eval split (test_datasets or val_set_size)."""
    from axo.train.evaluate import evaluate as run

    metrics = run(_load(config, ctx), checkpoint, exact_match, limit)
    for key, value in metrics.items():
        typer.echo(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")


@app.command("lm-eval", context_settings=OVERRIDES)
def lm_eval(
    ctx: typer.Context,
    config: str = CONFIG,
    tasks: Optional[str] = typer.Option(None, help="Comma-separated harness tasks or task YAML files "
                                        "(default: lm_eval_tasks)."),
    model: Optional[str] = typer.Option(None, help="Model or adapter folder (default: lm_eval_model, else "
                                        "output_dir)."),
    limit: Optional[int] = typer.Option(None, help="Score only the first N rows of each task."),
):
    """Benchmark scores of the trained model (lm-evaluation-harness), printed as a table and written
    to output_dir's run_summary.json and run report."""
    from axo.infer.benchmark import benchmark, record, table
    from axo.model.loader import trained_model_dir

    cfg = _load(config, ctx)
    scores = benchmark(cfg, tasks.split(",") if tasks else None, model, limit)
    typer.echo(table(scores))
    if model is None and cfg.train.lm_eval_model is None and trained_model_dir(cfg):  # scores of this run's model
        record(cfg.train.output_dir, scores)


@app.command("vllm-serve", context_settings=OVERRIDES)
def vllm_serve(ctx: typer.Context, config: str = CONFIG):
    """Serve the config's model with vLLM for GRPO's `vllm_mode: server` (GPU; wraps `trl vllm-serve`)."""
    import importlib.util
    import subprocess

    cfg = _load(config, ctx)
    if importlib.util.find_spec("vllm") is None:
        raise AxoError("`axo vllm-serve` needs vLLM on a GPU machine (`pip install vllm`); it is not installed here. "
                       "Without it GRPO generates with the training model (leave `trl.use_vllm` off).")
    sys.exit(subprocess.call(serve_command(cfg)))


def serve_command(cfg) -> list[str]:
    """`trl vllm-serve` for the config's model: the `vllm:` block's settings, and the host and port
    training will reach (`trl.vllm_server_host` / `_port` win over the block's)."""
    from axo.config.rl import VLLMOptions

    options, server = cfg.rl.trl, cfg.rl.vllm or VLLMOptions()
    reached = {"host": options and options.vllm_server_host, "port": options and options.vllm_server_port}
    server = server.model_copy(update={k: v for k, v in reached.items() if v})
    return ["trl", "vllm-serve", "--model", cfg.model.base_model, *server.serve_arguments()]


def main():
    import shlex

    from axo.logs import setup_logging

    setup_logging()
    # the command as the user typed it, for the run report; processes a launcher starts inherit it
    os.environ.setdefault("AXO_COMMAND", shlex.join(["axo", *sys.argv[1:]]))
    try:
        app()
    except Interrupted as err:
        from axo.parallel.launch import inside_launcher

        typer.secho(str(err), fg="yellow", err=True)
        # under a launcher, a clean exit: the launcher would report a failure (and its traceback);
        # the process that started it exits with the signal's status
        sys.exit(0 if inside_launcher() else err.status)
    except AxoError as err:
        typer.secho(f"error: {err}", fg="red", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.secho("interrupted", fg="yellow", err=True)
        sys.exit(130)


if __name__ == "__main__":  # `accelerate launch -m axo.cli train ...`, `torchrun -m axo.cli ...`
    main()
