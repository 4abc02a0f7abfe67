"""`axo train cfg.yml --num-processes N`: start the training processes with a standard launcher
(accelerate, torchrun) running `python -m axo.cli train cfg.yml ...` in each. Inside them axo
is the same program a user would start with `accelerate launch -m axo.cli train cfg.yml`.
`start` makes the one choice `axo train` has: spawn a launcher, submit to Ray, or train here."""

import os
import sys
from dataclasses import dataclass, field

LAUNCHERS = ("accelerate", "torchrun", "python")


@dataclass(frozen=True)
class Launch:
    launcher: str = "accelerate"
    num_processes: int = 1  # per node
    nnodes: int = 1
    node_rank: int = 0
    main_process_ip: str | None = None
    main_process_port: int | None = None
    passthrough: list[str] = field(default_factory=list)  # after `--`, for the launcher

    @property
    def spawns(self) -> bool:
        return self.launcher != "python" and (self.num_processes > 1 or self.nnodes > 1)


def start(config: str, overrides: list[str], launch: Launch) -> int:
    """Validate the config (a bad one fails before any process starts), then train: in processes a
    launcher starts, in a Ray Train job, or in this process. Returns the exit status."""
    from axo.config import load

    cfg = load(config, overrides)
    if launch.spawns and not inside_launcher():
        import torch

        from axo.parallel.engines import check_nd_device, check_world_size

        check_world_size(cfg.parallel, launch.num_processes * launch.nnodes)  # before any process starts
        check_nd_device(cfg.parallel, torch.accelerator.is_available())
        cmd = command(launch, [config, *overrides])
        print("launching: " + " ".join(cmd), file=sys.stderr)
        return _run_forwarding_sigterm(cmd)
    if cfg.parallel.use_ray and not inside_launcher():
        from axo.parallel.ray import train_on_ray

        train_on_ray(cfg, config, overrides)
        return 0
    from axo.train.recipes import run

    run(cfg)
    return 0


def _run_forwarding_sigterm(cmd: list[str]) -> int:
    """The launcher as a child process. SIGTERM sent to this process alone (Kubernetes, a scheduler
    stopping the main process) goes to the training processes, which save and stop after the same
    step (train/callbacks.py: SaveOnSignal) and end cleanly, so the launcher reports no failure;
    this process then exits 143 as one that trained itself. The launcher is left alone: torchrun
    meets SIGTERM with a traceback of its own. Ctrl-C reaches the whole process group from the
    terminal already; passing it on would count as a second Ctrl-C."""
    import signal
    import subprocess

    import psutil  # (accelerate's dependency)

    child, received = subprocess.Popen(cmd), []

    def forward(signum, frame):
        received.append(signum)
        for process in psutil.Process(child.pid).children(recursive=True):
            process.send_signal(signum)

    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, forward),
                signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN)}
    try:
        status = child.wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return 128 + received[0] if received and status == 0 else status


def inside_launcher() -> bool:
    """True in a process that torchrun / accelerate / Ray started (it must train, not launch)."""
    return "LOCAL_RANK" in os.environ or "WORLD_SIZE" in os.environ


def command(launch: Launch, train_args: list[str]) -> list[str]:
    """The launcher's command line; `train_args` is what follows `axo train` (config + overrides)."""
    program = ["-m", "axo.cli", "train", *train_args]
    if launch.launcher == "torchrun":
        cmd = [_bin("torchrun"), "--nproc-per-node", str(launch.num_processes), "--nnodes", str(launch.nnodes)]
        if launch.nnodes > 1:
            cmd += ["--node-rank", str(launch.node_rank)]
            if launch.main_process_ip:
                cmd += ["--master-addr", launch.main_process_ip]
            if launch.main_process_port:
                cmd += ["--master-port", str(launch.main_process_port)]
        elif not launch.main_process_port:
            cmd += ["--standalone"]  # a free local rendezvous: two runs on one machine cannot collide
        else:
            cmd += ["--master-port", str(launch.main_process_port)]
        return cmd + launch.passthrough + program
    if launch.launcher == "accelerate":
        # accelerate counts processes over all machines
        cmd = [_bin("accelerate"), "launch", "--num_processes", str(launch.num_processes * launch.nnodes),
               "--num_machines", str(launch.nnodes)]
        if launch.num_processes * launch.nnodes > 1:
            # accelerate's torch.distributed launcher; without it accelerate starts a single process
            # on a machine without GPUs. On CPU the processes then train over gloo.
            cmd += ["--multi_gpu"]
        if launch.nnodes > 1:
            cmd += ["--machine_rank", str(launch.node_rank)]
            if launch.main_process_ip:
                cmd += ["--main_process_ip", launch.main_process_ip]
        if launch.main_process_port:
            cmd += ["--main_process_port", str(launch.main_process_port)]
        return cmd + launch.passthrough + program
    return [sys.executable, *program]


def _bin(name: str) -> str:
    """The launcher installed next to this Python (the venv's), else the one on PATH."""
    local = os.path.join(os.path.dirname(sys.executable), name)
    return local if os.path.exists(local) else name
