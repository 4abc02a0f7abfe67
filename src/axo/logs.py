"""Log setup for the CLI: axo's own lines at INFO, and import-time chatter of optional
kernels (torchao's CUDA extensions, bitsandbytes' hub kernels, triton) kept off a CPU user's screen.
The libraries' own progress bars (loading and writing weights, each datasets operation) are off:
axo says what it prepares and loads in its lines, and training has its one progress line. Setting
HF_DATASETS_DISABLE_PROGRESS_BARS=0 / HF_HUB_DISABLE_PROGRESS_BARS=0 brings them back."""

import logging
import os

NOISY = ("torchao", "bitsandbytes", "torch.utils._pytree")


def setup_logging(level: int = logging.INFO) -> None:
    for variable in ("HF_DATASETS_DISABLE_PROGRESS_BARS", "HF_HUB_DISABLE_PROGRESS_BARS"):
        os.environ.setdefault(variable, "1")  # read when those libraries are imported, after this
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("[axo] %(message)s"))
    axo = logging.getLogger("axo")
    axo.addHandler(handler)
    axo.setLevel(level)
    axo.propagate = False
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.ERROR)
