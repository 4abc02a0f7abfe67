"""Shared base for every config area: typed, strict, read-only, with its cross-field rules."""

from collections.abc import Iterator

from pydantic import BaseModel, ConfigDict

# A problem found in a config: the path of the key to change, as the user wrote it (("lora_r",),
# ("datasets", 0, "field")), and what is wrong with the fix. An empty path: no single key.
Problem = tuple[tuple, str]


class Skipped(str):
    """A problem's message for a key that only buys speed or memory this run cannot use (Axolotl
    keys' class 3): the loader logs it as a warning and the run goes on; what is learned is the same."""


class Area(BaseModel):
    """One area of the config. Unknown fields are the loader's job to report; here they are forbidden.

    Checks of one field are pydantic validators. Checks across fields are `check()`, which yields
    every problem instead of stopping at the first, so the loader can report them all at once."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_default=True, protected_namespaces=()
    )

    def check(self) -> Iterator[Problem]:
        return iter(())

    def problems(self, path: tuple = ()) -> list[Problem]:
        """This area's cross-field problems and those of the areas inside it, by full key path."""
        found = [(path + where, message) for where, message in self.check()]
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, Area):
                found += value.problems(path + (name,))
            elif isinstance(value, list):
                for i, item in enumerate(value):
                    if isinstance(item, Area):
                        found += item.problems(path + (name, i))
        return found
