"""Read Terraform's .tf files as far as the project's tools need: blocks, attributes, literals.

A small scanner of our own rather than an HCL library: the tools need only the blocks of a
file, their attributes as source text (terraform-docs prints types as written, and validation
conditions are compared as written) and the values of literal defaults; the project's pinned
tool set stays as it is.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

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
    comment: str = ""  # the ``#``/``//`` lines right above it, joined by spaces


def _comment_above(text: str, start: int) -> str:
    lines: list[str] = []
    for line in reversed(text[:start].split("\n")[:-1]):
        if not line.startswith(("#", "//")):
            break
        lines.insert(0, line.strip().removeprefix("#").removeprefix("//").strip())
    return " ".join(lines)


def blocks(text: str) -> list[Block]:
    """The blocks of ``text`` at its top level (attributes at that level are skipped)."""
    return _body(text)[1]


def attributes(body: str) -> dict[str, str]:
    """Top-level attributes of a block body, as source text (nested blocks are skipped)."""
    return _body(body)[0]


def _body(text: str) -> tuple[dict[str, str], list[Block]]:
    """The attributes (name -> source text) and the blocks at the top level of ``text``."""
    found_attributes: dict[str, str] = {}
    found_blocks: list[Block] = []
    i = _skip_space(text, 0)
    while i < len(text):
        ident = _IDENT.match(text, i)
        if ident is None:
            raise HclError(f"expected an identifier at offset {i}: {text[i : i + 30]!r}")
        i = _skip_space(text, ident.end(), newlines=False)
        if text.startswith("=", i) and not text.startswith("==", i):
            end = _expression_end(text, i + 1)
            found_attributes[ident.group()] = text[i + 1 : end].strip()
            i = _skip_space(text, end)
            continue
        labels: list[str] = []
        # Labels are quoted strings, or bare identifiers (``output name {``).
        while (bare := _IDENT.match(text, i)) or text.startswith('"', i):
            end = bare.end() if bare else _skip_string(text, i)
            labels.append(bare.group() if bare else json.loads(text[i:end]))
            i = _skip_space(text, end, newlines=False)
        if not text.startswith("{", i):
            raise HclError(f"expected '=' or '{{' after {ident.group()} at offset {i}")
        end = _skip_balanced(text, i)
        comment = _comment_above(text, ident.start())
        found_blocks.append(Block(ident.group(), tuple(labels), text[i + 1 : end - 1], comment))
        i = _skip_space(text, end)
    return found_attributes, found_blocks


def string_literal(expression: str) -> str:
    """The value of a plain quoted string or a heredoc (HCL escapes are a superset of JSON's)."""
    if heredoc := _HEREDOC.match(expression):
        lines = expression[heredoc.end() :].split("\n")[:-1]  # drops the closing marker
        if expression.startswith("<<-"):
            indent = min((len(x) - len(x.lstrip()) for x in lines if x.strip()), default=0)
            lines = [x[indent:] for x in lines]
        return "".join(f"{line}\n" for line in lines)
    if not (expression.startswith('"') and expression.endswith('"')):
        raise HclError(f"expected a quoted string, got {expression[:40]!r}")
    return json.loads(expression)


# -----------------------------------------------------------------------------
# HCL literals (variable defaults) as JSON values
# -----------------------------------------------------------------------------


def hcl_value(source: str) -> object:
    """The value of a literal HCL expression: strings, numbers, bools, null, lists, objects."""
    value, end = _literal(source, _skip_space(source, 0))
    if _skip_space(source, end) != len(source):
        raise HclError(f"not a literal: {source[:40]!r}")
    return value


def _literal(text: str, i: int) -> tuple[object, int]:
    if text.startswith('"', i):
        end = _skip_string(text, i)
        return string_literal(text[i:end]), end
    if text[i] in "[{":
        closing = "]" if text[i] == "[" else "}"
        items: list[object] = []
        fields: dict[str, object] = {}
        i = _skip_space(text, i + 1)
        while not text.startswith(closing, i):
            if closing == "]":
                item, i = _literal(text, i)
                items.append(item)
            else:
                key_match = re.compile(r'"(?:[^"\\]|\\.)*"|[A-Za-z_][A-Za-z0-9_-]*').match(text, i)
                if key_match is None:
                    raise HclError(f"expected an object key at {text[i : i + 30]!r}")
                key = key_match.group()
                i = _skip_space(text, key_match.end())
                if text[i] not in "=:":
                    raise HclError(f"expected '=' after {key}")
                fields[string_literal(key) if key.startswith('"') else key], i = _literal(
                    text, _skip_space(text, i + 1)
                )
            i = _skip_space(text, i)
            if text.startswith(",", i):
                i = _skip_space(text, i + 1)
        return (items if closing == "]" else fields), i + 1
    token = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null").match(text, i)
    if token is None:
        raise HclError(f"not a literal: {text[i : i + 30]!r}")
    word = token.group()
    if word in ("true", "false", "null"):
        return {"true": True, "false": False, "null": None}[word], token.end()
    number = float(word)
    return (int(number) if number.is_integer() else number), token.end()
