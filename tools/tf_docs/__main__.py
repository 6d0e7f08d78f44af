#!/usr/bin/env python3
"""Generate the inputs/outputs tables of the Terraform modules' READMEs from their .tf files.

A README marks each generated block with the module folder it documents (relative to the
repository root; ``.`` is the root module)::

    <!-- tf-docs:begin modules/sagemaker-tgi -->
    ...generated...
    <!-- tf-docs:end modules/sagemaker-tgi -->

``--write`` regenerates every block of README.md, modules/*/README.md and examples/*/README.md;
``--check`` exits 1 when one is stale, or when a variable lacks a type or description or an
output lacks a description (the conventions the tables rely on).

The .tf files are read with a small scanner of our own rather than an HCL library: it needs
only the top-level ``variable``/``output`` blocks and their attributes as source text (so types
print exactly as written), and the project's pinned tool set stays as it is.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from tools.paths import REPO_ROOT

MARKER = re.compile(
    r"(?P<begin><!-- tf-docs:begin (?P<path>[^ ]+) -->\n)(?P<body>.*?)"
    r"(?P<end><!-- tf-docs:end (?P=path) -->)",
    re.S,
)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_HEREDOC = re.compile(r"<<-?([A-Za-z_][A-Za-z0-9_]*)\n")


# -----------------------------------------------------------------------------
# A minimal HCL scanner: enough to find blocks and the source text of their attributes
# -----------------------------------------------------------------------------


class HclError(ValueError):
    """The .tf text could not be scanned (unbalanced brackets, unterminated string...)."""


def _skip_comment(text: str, i: int) -> int | None:
    """End of a comment starting at ``i``, or None when there is none."""
    if text.startswith("#", i) or text.startswith("//", i):
        end = text.find("\n", i)
        return len(text) if end < 0 else end
    if text.startswith("/*", i):
        end = text.find("*/", i + 2)
        if end < 0:
            raise HclError("unterminated /* comment")
        return end + 2
    return None


def _skip_string(text: str, i: int) -> int:
    """``text[i]`` is an opening quote: index just after the closing one (templates included)."""
    i += 1
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if char == '"':
            return i + 1
        if text.startswith(("${", "%{"), i) and not text.startswith(("$${", "%%{"), i - 1):
            i = _skip_balanced(text, i + 1)
            continue
        if char == "\n":
            raise HclError("newline in a quoted string")
        i += 1
    raise HclError("unterminated string")


def _skip_heredoc(text: str, i: int) -> int | None:
    match = _HEREDOC.match(text, i)
    if match is None:
        return None
    closing = re.compile(rf"^[ \t]*{re.escape(match.group(1))}[ \t]*$", re.M)
    end = closing.search(text, match.end())
    if end is None:
        raise HclError(f"unterminated heredoc {match.group(1)}")
    return end.end()


def _skip_balanced(text: str, i: int) -> int:
    """``text[i]`` opens a bracket: index just after its matching close."""
    pairs = {"{": "}", "[": "]", "(": ")"}
    stack = [pairs[text[i]]]
    i += 1
    while i < len(text):
        if (end := _skip_comment(text, i)) is not None:
            i = end
            continue
        char = text[i]
        if char == '"':
            i = _skip_string(text, i)
            continue
        if char == "<" and (end := _skip_heredoc(text, i)) is not None:
            i = end
            continue
        if char in pairs:
            stack.append(pairs[char])
        elif char in ")]}":
            if char != stack.pop():
                raise HclError(f"unbalanced {char!r} at offset {i}")
            if not stack:
                return i + 1
        i += 1
    raise HclError("unbalanced brackets")


def _skip_space(text: str, i: int, *, newlines: bool = True) -> int:
    while i < len(text):
        if (end := _skip_comment(text, i)) is not None:
            i = end
        elif text[i] in " \t\r" or (newlines and text[i] == "\n"):
            i += 1
        else:
            break
    return i


def _expression_end(text: str, i: int) -> int:
    """End of the expression starting at ``i``: the first newline outside brackets."""
    while i < len(text):
        if (end := _skip_comment(text, i)) is not None:
            if text.startswith("/*", i):
                i = end
                continue
            return end
        char = text[i]
        if char == "\n":
            return i
        if char == '"':
            i = _skip_string(text, i)
        elif char == "<" and (end := _skip_heredoc(text, i)) is not None:
            i = end
        elif char in "{[(":
            i = _skip_balanced(text, i)
        else:
            i += 1
    return i


@dataclass(frozen=True)
class Block:
    type: str
    labels: tuple[str, ...]
    body: str


def blocks(text: str) -> list[Block]:
    """The blocks of ``text`` at its top level (attributes at that level are skipped)."""
    found: list[Block] = []
    i = _skip_space(text, 0)
    while i < len(text):
        ident = _IDENT.match(text, i)
        if ident is None:
            raise HclError(f"expected an identifier at offset {i}: {text[i : i + 30]!r}")
        i = _skip_space(text, ident.end(), newlines=False)
        if text.startswith("=", i) and not text.startswith("==", i):
            i = _skip_space(text, _expression_end(text, i + 1))
            continue
        labels: list[str] = []
        while text.startswith('"', i):
            end = _skip_string(text, i)
            labels.append(json.loads(text[i:end]))
            i = _skip_space(text, end, newlines=False)
        if not text.startswith("{", i):
            raise HclError(f"expected '{{' after {ident.group()} at offset {i}")
        end = _skip_balanced(text, i)
        found.append(Block(ident.group(), tuple(labels), text[i + 1 : end - 1]))
        i = _skip_space(text, end)
    return found


def attributes(body: str) -> dict[str, str]:
    """Top-level attributes of a block body, as source text (nested blocks are skipped)."""
    found: dict[str, str] = {}
    i = _skip_space(body, 0)
    while i < len(body):
        ident = _IDENT.match(body, i)
        if ident is None:
            raise HclError(f"expected an identifier: {body[i : i + 30]!r}")
        i = _skip_space(body, ident.end(), newlines=False)
        if body.startswith("=", i):
            end = _expression_end(body, i + 1)
            found[ident.group()] = body[i + 1 : end].strip()
            i = _skip_space(body, end)
            continue
        while body.startswith('"', i):
            i = _skip_space(body, _skip_string(body, i), newlines=False)
        if not body.startswith("{", i):
            raise HclError(f"expected '=' or '{{' after {ident.group()}")
        i = _skip_space(body, _skip_balanced(body, i))
    return found


def string_literal(expression: str) -> str:
    """The value of a plain quoted string (HCL escapes are a superset of JSON's here)."""
    if not (expression.startswith('"') and expression.endswith('"')):
        raise HclError(f"expected a quoted string, got {expression[:40]!r}")
    return json.loads(expression)


# -----------------------------------------------------------------------------
# Module documentation
# -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Variable:
    name: str
    description: str | None
    type: str | None
    default: str | None  # source text; None when the variable is required
    sensitive: bool


@dataclass(frozen=True)
class Output:
    name: str
    description: str | None
    sensitive: bool


@dataclass(frozen=True)
class ModuleDoc:
    path: str
    variables: list[Variable]
    outputs: list[Output]

    def problems(self) -> list[str]:
        found = [
            f"{self.path}: variable {v.name} has no type" for v in self.variables if not v.type
        ]
        found += [
            f"{self.path}: variable {v.name} has no description"
            for v in self.variables
            if not v.description
        ]
        found += [
            f"{self.path}: output {o.name} has no description"
            for o in self.outputs
            if not o.description
        ]
        return found


def read_module(folder: Path, root: Path = REPO_ROOT) -> ModuleDoc:
    variables: list[Variable] = []
    outputs: list[Output] = []
    files = sorted(folder.glob("*.tf"))
    if not files:
        raise FileNotFoundError(f"{folder} holds no .tf file")
    for tf_file in files:
        try:
            found = blocks(tf_file.read_text(encoding="utf-8"))
        except HclError as exc:
            raise HclError(f"{tf_file}: {exc}") from exc
        for block in found:
            if block.type not in ("variable", "output"):
                continue
            attrs = attributes(block.body)
            description = string_literal(attrs["description"]) if "description" in attrs else None
            sensitive = attrs.get("sensitive") == "true"
            if block.type == "variable":
                variables.append(
                    Variable(
                        block.labels[0],
                        description,
                        attrs.get("type"),
                        attrs.get("default"),
                        sensitive,
                    )
                )
            elif block.type == "output":
                outputs.append(Output(block.labels[0], description, sensitive))
    path = folder.resolve().relative_to(root.resolve()).as_posix() or "."
    return ModuleDoc(
        path, sorted(variables, key=_required_first), sorted(outputs, key=lambda o: o.name)
    )


def _required_first(variable: Variable) -> tuple[bool, str]:
    return (variable.default is not None, variable.name)


def one_line(source: str) -> str:
    """Source text on one line, with commas where newlines separated object attributes."""
    # terraform fmt aligns "=" with runs of spaces; one space reads better in a table.
    lines = [re.sub(r"\s{2,}=", " =", line.strip()) for line in source.splitlines() if line.strip()]
    joined = ""
    for line in lines:
        if (
            joined
            and not joined.endswith(("{", "(", "[", ","))
            and not line.startswith(("}", ")", "]"))
        ):
            joined += ","
        joined += (" " if joined and not joined.endswith(("(", "[")) else "") + line
    return re.sub(r"([(\[]) ", r"\1", joined)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _prose(text: str) -> str:
    """A description as a table cell: <placeholders> must not read as HTML tags."""
    return _cell(text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


def _code(source: str) -> str:
    text = _cell(one_line(source))
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def render(doc: ModuleDoc) -> str:
    lines = ["**Inputs**", ""]
    if doc.variables:
        lines += [
            "| Name | Description | Type | Default | Required |",
            "| --- | --- | --- | --- | :---: |",
        ]
        for v in doc.variables:
            description = _prose(v.description or "")
            if v.sensitive:
                description += " *(sensitive)*"
            default = "n/a" if v.default is None else _code(v.default)
            required = "yes" if v.default is None else "no"
            type_ = _code(v.type or "any")
            lines.append(f"| `{v.name}` | {description} | {type_} | {default} | {required} |")
    else:
        lines.append("No inputs.")
    lines += ["", "**Outputs**", ""]
    if doc.outputs:
        lines += ["| Name | Description |", "| --- | --- |"]
        for o in doc.outputs:
            sensitive = " *(sensitive)*" if o.sensitive else ""
            lines.append(f"| `{o.name}` | {_prose(o.description or '')}{sensitive} |")
    else:
        lines.append("No outputs.")
    return "\n".join(lines) + "\n"


# -----------------------------------------------------------------------------
# READMEs
# -----------------------------------------------------------------------------


def readmes(root: Path = REPO_ROOT) -> list[Path]:
    candidates = [root / "README.md", *sorted(root.glob("modules/*/README.md"))]
    candidates += sorted(root.glob("examples/*/README.md"))
    return [path for path in candidates if path.is_file()]


def regenerate(text: str, root: Path = REPO_ROOT) -> str:
    def fill(match: re.Match[str]) -> str:
        doc = read_module(root / match.group("path"), root)
        return match.group("begin") + render(doc) + match.group("end")

    return MARKER.sub(fill, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="update the READMEs in place")
    mode.add_argument("--check", action="store_true", help="exit 1 if a README is stale")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    root: Path = args.root

    stale: list[Path] = []
    blocks_seen = 0
    for readme in readmes(root):
        current = readme.read_text(encoding="utf-8")
        blocks_seen += len(MARKER.findall(current))
        updated = regenerate(current, root)
        if updated == current:
            continue
        stale.append(readme)
        if args.write:
            readme.write_text(updated, encoding="utf-8")
        else:
            diff = difflib.unified_diff(
                current.splitlines(keepends=True),
                updated.splitlines(keepends=True),
                fromfile=f"{readme.relative_to(root)} (now)",
                tofile=f"{readme.relative_to(root)} (generated)",
                n=1,
            )
            sys.stdout.writelines(list(diff)[:60])

    problems = [p for folder in _module_folders(root) for p in read_module(folder, root).problems()]
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if blocks_seen == 0:
        print("error: no <!-- tf-docs:begin PATH --> block found in any README", file=sys.stderr)
        return 1
    if args.write:
        for readme in stale:
            print(f"updated {readme.relative_to(root)}")
        return 1 if problems else 0
    for readme in stale:
        print(f"error: {readme.relative_to(root)} is stale; run `make docs`", file=sys.stderr)
    return 1 if stale or problems else 0


def _module_folders(root: Path) -> list[Path]:
    folders = [root, *sorted(root.glob("modules/*")), *sorted(root.glob("examples/*"))]
    return [f for f in folders if f.is_dir() and any(f.glob("*.tf"))]


if __name__ == "__main__":
    sys.exit(main())
