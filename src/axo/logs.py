"""Log setup for the CLI: axo's own lines at INFO, and import-time chatter of optional
kernels (torchao's CUDA extensions, bitsandbytes' hub kernels, triton) kept off a CPU user's screen."""

import logging

NOISY = ("torchao", "bitsandbytes", "torch.utils._pytree")


def setup_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("[axo] %(message)s"))
    axo = logging.getLogger("axo")
    axo.addHandler(handler)
    axo.setLevel(level)
    axo.propagate = False
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.ERROR)
