"""MkDocs hooks (see mkdocs.yml) that generate the pages kept elsewhere in the checkout.

- `index.md` and `changelog.md` are README.md and CHANGELOG.md, with links into the
  checkout rewritten for the site.
- `reference/<module>.md`, for every such page the nav lists and docs/ does not hold, is the
  module's API reference (mkdocstrings); `reference/cli.md` is the `--help` of every command.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = "reference/"
# a Markdown link into the checkout: [text](target) with a relative target
_LINK = re.compile(r"\[([^\]]+)\]\((?!https?:|mailto:|#)([^)\s]+)\)")


def _site_links(markdown: str) -> str:
    """Links to docs/X keep pointing at X on the site; links to other files of the checkout
    become their plain text (the site does not hold those files)."""

    def fix(match: re.Match[str]) -> str:
        text, target = match.groups()
        if target.startswith("docs/"):
            return f"[{text}]({target.removeprefix('docs/')})"
        return text

    return _LINK.sub(fix, markdown)


def _nav_paths(nav: Any) -> Iterator[str]:
    if isinstance(nav, str):
        yield nav
    elif isinstance(nav, list):
        for item in nav:
            yield from _nav_paths(item)
    elif isinstance(nav, dict):
        for value in nav.values():
            yield from _nav_paths(value)


def module_page(module: str) -> str:
    """The API reference page of one module."""
    return (f"# {module}\n\n::: {module}\n    options:\n      show_root_heading: false\n"
            "      show_root_toc_entry: false\n")


def cli_page() -> str:
    """`hyperlaw --help` and the help of every command and subcommand."""
    from hyperlaw.cli import cli

    parts = ["# Command line\n\nEvery command reads the storage URL from `--storage` or from "
             "the `HYPERLAW_STORAGE` environment variable.\n"]

    def add(command: click.Command, path: list[str], parent: click.Context | None) -> None:
        ctx = click.Context(command, info_name=path[-1], parent=parent,
                            terminal_width=100, max_content_width=100)
        heading = "#" * min(len(path) + 1, 4)
        parts.append(f"{heading} {' '.join(path)}\n\n```text\n{command.get_help(ctx)}\n```\n")
        if isinstance(command, click.Group):
            for name in sorted(command.list_commands(ctx)):
                sub = command.get_command(ctx, name)
                if sub is not None and not sub.hidden:
                    add(sub, [*path, name], ctx)

    add(cli, ["hyperlaw"], None)
    return "\n".join(parts)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the generated pages that docs/ does not hold."""
    pages = {"index.md": _site_links((ROOT / "README.md").read_text()),
             "changelog.md": _site_links((ROOT / "CHANGELOG.md").read_text())}
    for path in _nav_paths(config.nav):
        if path.startswith(REFERENCE) and path.endswith(".md"):
            name = path.removeprefix(REFERENCE).removesuffix(".md")
            pages[path] = cli_page() if name == "cli" else module_page(name)
    for path, content in pages.items():
        if files.get_file_from_path(path) is None:
            files.append(File.generated(config, path, content=content))
    return files
