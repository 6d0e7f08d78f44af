"""Write terraform-docs' tables into the Terraform modules' READMEs, without terraform-docs.

terraform-docs is a Go binary that none of the project's package registries (PyPI, npm,
Debian) carries, so this script writes what ``terraform-docs markdown table`` (v0.24, default
settings, ``--lockfile=false``) injects between ``<!-- BEGIN_TF_DOCS -->`` and
``<!-- END_TF_DOCS -->`` in a module folder's README.md: requirements, providers, modules,
resources, inputs and outputs, with the same anchors, escaping, sorting and value rendering.
A contributor whose pre-commit runs the real terraform-docs gets the same bytes. (Checked
against the output terraform-docs v0.24 documents for its own example module: header comment,
provider aliases, ignored blocks, heredoc descriptions, pipes, URLs and multi-line values all
come out identical.)

``--write`` regenerates the block of docs/terraform.md (the root module's reference, kept out of
the README, the user's page), modules/*/README.md and examples/*/README.md;
``--check`` exits 1 when one is stale, or when a variable lacks a type or description or an
output lacks a description (the conventions the tables rely on).

The .tf files are read with tools.tf_docs.hcl, the project's small HCL scanner.
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
from tools.tf_docs.hcl import HclError, attributes, blocks, hcl_value, string_literal

# -----------------------------------------------------------------------------
# Module documentation: what terraform-docs reads of a module folder
# -----------------------------------------------------------------------------

BEGIN = "<!-- BEGIN_TF_DOCS -->"
END = "<!-- END_TF_DOCS -->"
MARKER = re.compile(rf"{re.escape(BEGIN)}.*?{re.escape(END)}", re.S)
REGISTRY = "https://registry.terraform.io/providers"


@dataclass(frozen=True)
class Variable:
    name: str
    description: str | None
    type: str | None  # source text, as terraform-docs prints it
    default: str | None  # source text; None when the variable is required
    comment: str = ""  # terraform-docs' description when there is none


@dataclass(frozen=True)
class Output:
    name: str
    description: str | None
    comment: str = ""


@dataclass(frozen=True)
class Resource:
    mode: str  # "managed" or "data"
    type: str
    name: str
    provider: str  # its `provider` argument, else the type's prefix
    alias: str = ""


@dataclass(frozen=True)
class ModuleDoc:
    path: str
    header: str
    variables: list[Variable]
    outputs: list[Output]
    terraform_versions: list[str]
    # provider name -> (source, version constraints as written)
    required_providers: dict[str, tuple[str | None, list[str]]]
    module_calls: dict[str, tuple[str, str | None]]  # name -> (source, version)
    resources: list[Resource]

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
    files = sorted(folder.glob("*.tf"))
    if not files:
        raise FileNotFoundError(f"{folder} holds no .tf file")
    variables: list[Variable] = []
    outputs: list[Output] = []
    terraform_versions: list[str] = []
    providers: dict[str, tuple[str | None, list[str]]] = {}
    module_calls: dict[str, tuple[str, str | None]] = {}
    resources: list[Resource] = []
    for tf_file in files:
        try:
            found = blocks(tf_file.read_text(encoding="utf-8"))
        except HclError as exc:
            raise HclError(f"{tf_file}: {exc}") from exc
        for block in found:
            attrs = attributes(block.body)
            if block.type == "terraform":
                _read_terraform_block(block.body, terraform_versions, providers)
                continue
            if "terraform-docs-ignore" in block.comment:
                continue
            description = None
            if block.type in ("variable", "output") and "description" in attrs:
                description = string_literal(attrs["description"])
            if block.type == "variable":
                variables.append(
                    Variable(
                        block.labels[0],
                        description,
                        attrs.get("type"),
                        attrs.get("default"),
                        block.comment,
                    )
                )
            elif block.type == "output":
                outputs.append(Output(block.labels[0], description, block.comment))
            elif block.type in ("resource", "data"):
                mode = "managed" if block.type == "resource" else "data"
                provider = attrs.get("provider", block.labels[0].split("_", 1)[0]).strip('"')
                name, _, alias = provider.partition(".")
                resources.append(Resource(mode, *block.labels, name, alias))
            elif block.type == "module":
                source = string_literal(attrs["source"])
                version = string_literal(attrs["version"]) if "version" in attrs else None
                if version is None and "?ref=" in source and not source.endswith("?ref="):
                    source, _, version = source.rpartition("?ref=")
                module_calls[block.labels[0]] = (source, version)
    path = folder.resolve().relative_to(root.resolve()).as_posix() or "."
    return ModuleDoc(
        path,
        _header(folder / "main.tf"),
        variables,
        outputs,
        terraform_versions,
        providers,
        module_calls,
        resources,
    )


def _read_terraform_block(
    body: str, versions: list[str], providers: dict[str, tuple[str | None, list[str]]]
) -> None:
    if "required_version" in (attrs := attributes(body)):
        versions.append(string_literal(attrs["required_version"]))
    for inner in blocks(body):
        if inner.type != "required_providers":
            continue
        for name, spec in attributes(inner.body).items():
            if spec.startswith('"'):  # the pre-0.13 shorthand: name = "version"
                providers[name] = (None, [string_literal(spec)])
                continue
            fields = attributes(spec.strip()[1:-1])
            source = string_literal(fields["source"]) if "source" in fields else None
            constraints = [string_literal(fields["version"])] if "version" in fields else []
            providers[name] = (source, constraints)


def _header(main_tf: Path) -> str:
    """The leading ``/* ... */`` comment of main.tf, which terraform-docs prints first."""
    if not main_tf.is_file():
        return ""
    lines: list[str] = []
    for line in main_tf.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped.startswith(("/*", "*")):
            break
        if stripped.startswith(("/*", "*/")):
            continue
        lines.append("" if stripped == "*" else line.lstrip(" ").removeprefix("* "))
    return "\n".join(lines)


# -----------------------------------------------------------------------------
# Rendering, as terraform-docs' markdown table templates and their helpers do
# -----------------------------------------------------------------------------


def _segments(text: str, fence: str) -> list[tuple[str, bool, bool, bool]]:
    """``text`` split at ``fence``: (segment, in code, first, last); empty ones are dropped."""
    parts = text.split(fence)
    in_code = text.startswith(fence)
    found = []
    for i, part in enumerate(parts):
        if not part:
            continue
        first = i == 0 or not parts[i - 1].strip()
        last = i == len(parts) - 1 or not parts[i + 1].strip()
        found.append((part, in_code, first, last))
        in_code = not in_code
    return found


def _escape_underscores(line: str) -> str:
    """Escape ``_`` except around emphasis (``_word_``) and a leading list-like run."""
    keep = "\u2021\u2021\u2021DONTESCAPE\u2021\u2021\u2021"
    for pattern, groups in (
        (r"^(\s*)(_+)(\s+)(.*)", (2,)),
        (r"(\s+)(_+)([^\t\n\f\r _])(.*)([^\t\n\f\r _])(_+)(\s+)", (6, 2)),
    ):
        # Spans of the original line, applied in place as terraform-docs does.
        for match in list(re.finditer(pattern, line)):
            for group in groups:
                start, end = match.span(group)
                line = line[:start] + match.group(group).replace("_", keep) + line[end:]
    return line.replace("_", "\\_").replace(keep, "_")


def _escape(text: str, *, pipes: bool = True) -> str:
    """Underscores (and, in tables, pipes) escaped outside inline code."""
    piped = "".join(
        f"`{part}`" if code else part.replace("|", "\\|") if pipes else part
        for part, code, _, _ in _segments(text, "`")
    )
    return "".join(
        f"`{part}`" if code else "\n".join(map(_escape_underscores, part.split("\n")))
        for part, code, _, _ in _segments(piped, "`")
    )


_URL = re.compile(r"(?:https?|ftp)://[^\s<>\"'`]+")


def _table_text(text: str) -> str:
    """terraform-docs' ``sanitizeMarkdownTbl`` with escaping and HTML on (the defaults)."""
    if not text:
        return "n/a"
    out = []
    for part, code, _, _ in _segments(text, "```"):
        if code:
            out.append("<pre>" + part.strip().replace("\n", "<br/>").replace("\r", "") + "</pre>")
            continue
        prose = _escape(part).strip()
        # Markdown's line breaks, then HTML ones: a table row holds a single line.
        prose = re.sub(r"(\S*)(\r?\n)(\s*)(\w+)", r"\1  \2\3\4", prose)
        prose = prose.replace("    \n", "  \n").replace("  \n\n", "\n\n").replace("\n  \n", "\n\n")
        prose = prose.replace("  \n", "<br/>").replace("\n", "<br/>")
        out.append(_URL.sub(lambda m: m.group().replace("\\", ""), prose))
    return "".join(out)


def _code(text: str) -> str:
    """A type or value: inline code, or a fenced block when it spans lines."""
    return _table_text(f"\n\n```\n{text}\n```\n" if "\n" in text else f"`{text}`")


def _anchor(prefix: str, name: str) -> str:
    escaped = name.replace("_", "\\_")
    return f'<a name="{prefix}_{name}"></a> [{escaped}](#{prefix}\\_{escaped})'


def _default(variable: Variable) -> str:
    if variable.default is None:
        return "n/a"
    # Go's encoder, as terraform-docs configures it: two-space indent, sorted keys, no HTML
    # escaping, integral numbers without a decimal point.
    value = json.dumps(hcl_value(variable.default), indent=2, ensure_ascii=False, sort_keys=True)
    return _code(value)


def _section(title: str, empty: str, head: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return f"## {title}\n\n{empty}"
    lines = ["| " + " | ".join(head) + " |"]
    lines.append("| " + " | ".join(_RULES.get(h, "-" * len(h)) for h in head) + " |")
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return f"## {title}\n\n" + "\n".join(lines)


_RULES = {"Required": ":------:"}


def render(doc: ModuleDoc) -> str:
    """The text terraform-docs puts between the markers (without them)."""
    requirements = [[_anchor("requirement", "terraform"), v] for v in doc.terraform_versions]
    for name in sorted(doc.required_providers):
        for version in doc.required_providers[name][1]:
            requirements.append([_anchor("requirement", name), version])

    providers = []
    for name, alias in sorted({(r.provider, r.alias) for r in doc.resources}):
        version = " ".join(doc.required_providers.get(name, (None, []))[1]) or "n/a"
        providers.append([_anchor("provider", f"{name}.{alias}" if alias else name), version])

    modules = [
        [_anchor("module", name), source, version or "n/a"]
        for name, (source, version) in sorted(doc.module_calls.items())
    ]

    resources = []
    unique = {(r.provider, r.mode, r.type, r.name): r for r in doc.resources}.values()
    for r in sorted(unique, key=lambda r: (r.mode != "managed", _spec(r), r.name)):
        source, constraints = doc.required_providers.get(r.provider, (None, []))
        source = source or f"hashicorp/{r.provider}"
        docs = "resources" if r.mode == "managed" else "data-sources"
        kind = r.type.removeprefix(f"{r.provider}_")
        url = f"{REGISTRY}/{source}/{_docs_version(constraints)}/docs/{docs}/{kind}"
        spec = f"[{_spec(r)}]({url})" if source.count("/") <= 1 else _spec(r)
        resources.append([spec, "resource" if r.mode == "managed" else "data source"])

    inputs = [
        [
            _anchor("input", v.name),
            _table_text(v.description or v.comment),
            _code(_type(v)),
            _default(v),
            "yes" if v.default is None else "no",
        ]
        for v in sorted(doc.variables, key=lambda v: v.name)
    ]
    outputs = [
        [_anchor("output", o.name), _table_text(o.description or o.comment)]
        for o in sorted(doc.outputs, key=lambda o: o.name)
    ]

    sections = [_section_text(doc.header)] if doc.header else []
    sections += [
        _section("Requirements", "No requirements.", ["Name", "Version"], requirements),
        _section("Providers", "No providers.", ["Name", "Version"], providers),
        _section("Modules", "No modules.", ["Name", "Source", "Version"], modules),
        _section("Resources", "No resources.", ["Name", "Type"], resources),
        _section(
            "Inputs",
            "No inputs.",
            ["Name", "Description", "Type", "Default", "Required"],
            inputs,
        ),
        _section("Outputs", "No outputs.", ["Name", "Description"], outputs),
    ]
    return _tidy("\n\n".join(sections))


def _spec(resource: Resource) -> str:
    kind = resource.type.removeprefix(f"{resource.provider}_")
    return f"{resource.provider}_{kind}.{resource.name}"


def _docs_version(constraints: list[str]) -> str:
    """The registry docs version of a resource link: an exact pin, else "latest"."""
    if not constraints:
        return "latest"
    parts = constraints[-1].split(" ")
    if len(parts) == 1 and parts[0]:
        if parts[0][0].isdigit():
            return parts[0]
        return parts[0][1:] if parts[0][0] == "=" else "latest"
    if len(parts) == 2 and parts[0] == "=":
        return parts[1]
    return "latest"


def _type(variable: Variable) -> str:
    """The type as written, else the kind of the default, as terraform-docs shows it."""
    if variable.type:
        return variable.type.strip('"')
    if variable.default is None:
        return "any"
    value = hcl_value(variable.default)
    for kind, name in ((bool, "bool"), (str, "string"), ((int, float), "number")):
        if isinstance(value, kind):
            return name
    return {list: "list", dict: "map"}.get(type(value), "any")


def _section_text(text: str) -> str:
    """terraform-docs' ``sanitizeSection``: a header or footer with its code blocks kept."""
    out = []
    for part, code, _, _ in _segments(text, "```"):
        if code:
            last_line = part.split("\n")[-1]
            newline = "" if part.endswith("\n") or not last_line.strip() else "\n"
            out.append(f"```{part}{newline}```")
        else:
            out.append(_URL.sub(lambda m: m.group().replace("\\", ""), _escape(part, pipes=False)))
    return "".join(out)


def _tidy(markdown: str) -> str:
    """terraform-docs' last pass: no trailing spaces (but Markdown's two), no blank runs."""
    keep = "\u2021\u2021\u2021DOUBLESPACES\u2021\u2021\u2021"
    text = re.sub(r" {2}(\r?\n)", keep + r"\1", markdown)
    text = re.sub(r" +(\r?\n)", r"\1", text)
    text = re.sub(r" +$", "", text)
    text = re.sub(re.escape(keep) + r"(\r?\n)", r"  \1", text)
    text = re.sub(r"(\r?\n)  (\r?\n)", r"\1", text)
    text = re.sub(r"(\r?\n){3,}", r"\1\1", text)
    return re.sub(r"(\r?\n){2,}$", "", text)


# -----------------------------------------------------------------------------
# READMEs
# -----------------------------------------------------------------------------


# The root module's reference: a docs page of its own, so the README stays the user's page.
ROOT_REFERENCE = Path("docs/terraform.md")


def readmes(root: Path = REPO_ROOT) -> list[Path]:
    candidates = [root / ROOT_REFERENCE, *sorted(root.glob("modules/*/README.md"))]
    candidates += sorted(root.glob("examples/*/README.md"))
    return [path for path in candidates if path.is_file()]


def regenerate(readme: Path, root: Path = REPO_ROOT) -> str:
    """The README with its block rewritten from the module in its own folder."""
    text = readme.read_text(encoding="utf-8")
    module = root if readme == root / ROOT_REFERENCE else readme.parent
    block = f"{BEGIN}\n{render(read_module(module, root))}\n{END}"
    return MARKER.sub(lambda _: block, text, count=1)


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
        if not MARKER.search(current):
            continue
        blocks_seen += 1
        updated = regenerate(readme, root)
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
        print(f"error: no {BEGIN} ... {END} block found in any README", file=sys.stderr)
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
