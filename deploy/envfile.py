"""The environment-file template (deploy/env.example) checked against the settings, so it
cannot drift: every variable the settings read is listed, nothing else is, and every
literal default is the one the settings use.

    python deploy/envfile.py            # check; exit 1 listing each difference
    python deploy/envfile.py --missing  # print template lines for variables not yet listed

The variables are found by reading cs_platform/settings/*.py (calls to `env.<type>("NAME",
default=...)`, `env("NAME")` and `env_bool("NAME", default)`), not by importing them, so the
check needs no database, no secret and no Django.
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETTINGS_DIR = ROOT / "cs_platform" / "settings"
TEMPLATE = Path(__file__).resolve().parent / "env.example"
LINE = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$")


@dataclass(frozen=True)
class Read:
    name: str
    default: object  # a Python literal, or NOT_LITERAL
    where: str


NOT_LITERAL = object()


def _literal(node: ast.expr | None) -> object:
    if node is None:
        return None
    try:
        return ast.literal_eval(node)
    except ValueError:
        return NOT_LITERAL


def settings_reads(settings_dir: Path = SETTINGS_DIR) -> dict[str, Read]:
    reads: dict[str, Read] = {}
    for path in sorted(settings_dir.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            is_env = (isinstance(func, ast.Attribute) and _is_name(func.value, "env")) or (
                _is_name(func, "env") or _is_name(func, "env_bool")
            )
            first = node.args[0]
            if not is_env or not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                continue
            default = next((k.value for k in node.keywords if k.arg == "default"), None)
            if default is None and len(node.args) > 1:
                default = node.args[1]
            reads.setdefault(
                first.value,
                Read(first.value, _literal(default), f"{path.name}:{node.lineno}"),
            )
    return reads


def _is_name(node: ast.expr, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def template_entries(template: Path = TEMPLATE) -> dict[str, tuple[str, bool]]:
    """NAME -> (value, is_default). `# NAME=value` (commented out) states the default and is
    checked; `NAME=value` is a value production must set, shown as an example."""
    entries = {}
    for line in template.read_text().splitlines():
        match = LINE.match(line.strip())
        if match:
            entries[match.group(1)] = (match.group(2).strip(), line.lstrip().startswith("#"))
    return entries


def as_env_text(value: object) -> str | None:
    """How a literal default is written in an env file; None when it is not comparable."""
    if value is NOT_LITERAL:
        return None
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def differences(
    reads: dict[str, Read] | None = None, entries: dict[str, tuple[str, bool]] | None = None
) -> list[str]:
    reads = settings_reads() if reads is None else reads
    entries = template_entries() if entries is None else entries
    problems = []
    for name in sorted(set(reads) - set(entries)):
        problems.append(f"{name} ({reads[name].where}) is read by the settings but not listed")
    for name in sorted(set(entries) - set(reads)):
        problems.append(f"{name} is listed but no setting reads it")
    for name in sorted(set(reads) & set(entries)):
        value, is_default = entries[name]
        expected = as_env_text(reads[name].default)
        if is_default and expected is not None and value != expected:
            problems.append(
                f"{name} is listed as {value!r} but the settings default is {expected!r}"
                f" ({reads[name].where})"
            )
    return problems


def main(argv: list[str]) -> int:
    if "--missing" in argv:
        entries = template_entries()
        for name, read in sorted(settings_reads().items()):
            if name not in entries:
                text = as_env_text(read.default)
                print(f"# ({read.where}) TODO: meaning\n{name}={'' if text is None else text}")
        return 0
    problems = differences()
    for problem in problems:
        print(f"deploy/env.example: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
