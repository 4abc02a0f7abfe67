"""Where one preparation writes datasets' intermediate files, and the key they are named by.

datasets caches the output of every step (map, filter, shuffle, split) beside its input, under a
fingerprint of the step's own arguments, and reads it back when the fingerprint recurs. For axo's steps
that fingerprint cannot see what the rows depend on (the tokenizer, the template, the length settings
travel inside objects it does not hash), so a second config's preparation of the same file would read
the first one's rows. So every step writes into a folder of its own preparation, removed once the
prepared rows are saved in axo's cache, and the first step's fingerprint is axo's cache key (which names
everything the rows depend on), so every later fingerprint derives from it."""

import hashlib
import shutil
from contextlib import contextmanager
from pathlib import Path


class Scratch:
    def __init__(self, folder: Path, key: str):
        self.folder, self.key, self._files = folder, key, 0

    def file(self, step: str) -> str:
        """A new file for one step's output."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._files += 1
        return str(self.folder / f"{self._files:03d}-{step}.arrow")

    def fingerprint(self, *parts: str) -> str:
        """datasets' fingerprint of a step's output that depends on `parts` and on this preparation."""
        return hashlib.sha256(" ".join((self.key, *parts)).encode()).hexdigest()[:16]

    @property
    def downloads(self) -> str:
        """datasets' cache_dir for raw files read in this preparation (local files, URIs)."""
        return str(self.folder / "raw")


@contextmanager
def scratch(beside: Path, key: str):
    """A Scratch in a new folder next to `beside`, removed when the block ends, however it ends."""
    import os

    folder = beside.with_name(f"{beside.name}.scratch-{os.getpid()}")
    shutil.rmtree(folder, ignore_errors=True)
    try:
        yield Scratch(folder, key)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
