"""`axo migrate CFG`: the config in today's spelling. Keys an older Axolotl release named otherwise take
today's name, keys no Axolotl release read are removed, a key set twice keeps its second (the one YAML
reads); everything else, comments and layout included, stays as written. The result must load into
exactly the config the original does (so it trains exactly like it) and pass `strict: true`; otherwise
nothing is written.

The edits are the loader's own findings (loader.Reading), applied to the text at the YAML positions of
the keys, so the migration and the warnings at load can never disagree."""

import difflib
from dataclasses import dataclass
from pathlib import Path

import yaml

from axo.config.loader import Reading, dotted, parse_yaml, validate
from axo.errors import AxoError, ConfigError


@dataclass
class Migration:
    text: str  # the migrated config
    changes: list[str]  # for each change, what and why

    def diff(self, original: str, name: str) -> str:
        return "".join(difflib.unified_diff(original.splitlines(True), self.text.splitlines(True), f"{name} (as written)",
                                            f"{name} (today's spelling)"))


def migrate(path: Path) -> Migration:
    original = path.read_text()
    raw, where, repeated = parse_yaml(original)
    reading = Reading(repeated=repeated)
    try:
        before = validate(raw, dict(where), source=str(path), reading=reading)
    except ConfigError as err:
        raise ConfigError(err.problems + ["`axo migrate` rewrites a config that loads; fix the problems above first"],
                          source=str(path)) from None
    found = [(_rename(original, key_path, new), f"`{dotted(key_path)}` -> `{new}`: {why}")
             for key_path, new, why in reading.renamed]
    found += [(_removal(original, key_path, last=True), f"removed `{dotted(key_path)}`: {why.split(': ', 1)[1]}")
              for key_path, why in reading.unread]
    found += [(_removal(original, key_path, last=False),
               f"removed the first `{dotted(key_path)}`: {why.split('): ', 1)[1]}") for key_path, why in reading.repeated]
    found.sort(key=lambda edit_change: edit_change[0][0])  # in the file's order
    text = _apply(original, [edit for edit, _ in found])
    _check(path, text, before)
    return Migration(text, [change for _, change in found])


def _check(path: Path, text: str, before) -> None:
    """The migrated text loads, strictly, into the very config the original loads into."""
    raw, where, repeated = parse_yaml(text)
    try:
        after = validate({**raw, "strict": True}, where, source=f"{path} (migrated)", reading=Reading(repeated=repeated))
    except ConfigError as err:
        raise AxoError(f"axo could not migrate {path} safely (nothing was written): {err}") from None
    if after.to_flat() != before.to_flat():
        changed = sorted(k for k, v in after.to_flat().items() if before.to_flat().get(k) != v)
        raise AxoError(f"axo could not migrate {path} safely (nothing was written): the result would train "
                       f"differently ({', '.join(changed)})")


# ---- text edits at the YAML positions of keys -------------------------------------------------------

def _nodes(text: str, key_path: tuple, last: bool):
    """(the mapping node holding the key, the key's index in it) for a path of keys and list indices."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    for part in key_path[:-1]:
        if isinstance(part, int):
            node = node.value[part]
        else:
            node = [v for k, v in node.value if k.value == part][-1]
    found = [i for i, (k, _) in enumerate(node.value) if k.value == key_path[-1]]
    return node, found[-1 if last else 0]


def _rename(text: str, key_path: tuple, new: str) -> tuple[int, int, str]:
    mapping, i = _nodes(text, key_path, last=True)
    key = mapping.value[i][0]
    return key.start_mark.index, key.end_mark.index, new


def _removal(text: str, key_path: tuple, last: bool) -> tuple[int, int, str]:
    """The span of a key and its value: from its line's start (or, for the first key of a list item, the
    key itself, so the item's `- ` stays for the next key: an entry always has a `path` left) to the next
    key's line, or the value's end."""
    mapping, i = _nodes(text, key_path, last)
    key, value = mapping.value[i]
    if len(mapping.value) == 1 and len(key_path) > 1 and not isinstance(key_path[-2], int):
        # the block's only key: the block stays, empty (`trl: {}`), so it reads as it did
        holder, j = _nodes(text, key_path[:-1], last=True)
        colon = text.index(":", holder.value[j][0].end_mark.index)
        return colon + 1, _line_end(text, value), " {}\n"
    line_start = text.rfind("\n", 0, key.start_mark.index) + 1
    first_in_item = text[line_start:key.start_mark.index].strip() == "-"
    if i + 1 < len(mapping.value):
        following = mapping.value[i + 1][0].start_mark.index
        end = following if first_in_item else text.rfind("\n", 0, following) + 1
    else:
        end = _line_end(text, value)
    return (key.start_mark.index if first_in_item else line_start), end, ""


def _line_end(text: str, value) -> int:
    """Just past the line on which a value node ends (its trailing comment included)."""
    end = text.find("\n", value.end_mark.index - (1 if value.end_mark.column == 0 else 0))
    return len(text) if end < 0 else end + 1


def _apply(text: str, edits: list[tuple[int, int, str]]) -> str:
    for start, end, new in sorted(edits, reverse=True):  # from the end, so earlier positions stay valid
        text = text[:start] + new + text[end:]
    return text
