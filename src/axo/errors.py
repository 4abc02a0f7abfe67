"""Errors meant for people: the CLI prints them without a traceback."""


class AxoError(Exception):
    """A mistake in the user's config, data or environment, with the fix in the message."""


class ConfigError(AxoError):
    """All the problems found in one config, reported together."""

    def __init__(self, problems: list[str], source: str = "config"):
        self.problems = problems
        self.source = source
        lines = "\n".join(f"  - {p}" for p in problems)
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"{source}: {len(problems)} {noun}:\n{lines}")


class Interrupted(AxoError):
    """Training stopped on a signal after saving a checkpoint; the exit status says which signal."""

    def __init__(self, message: str, signum: int):
        self.status = 128 + signum
        super().__init__(message)
