"""README.md and docs/*.md stay true: every shell command they show is run by a named test or says why it cannot
run here (``documented_commands.py``); every ``trustdial`` / ``trustdial-verify`` command and synopsis names a
subcommand and flags that its ``--help`` lists; every ``make`` target exists; every relative link and anchor
resolves. (The README's Python client example runs in ``tests/enclave/test_readme_client.py``.)"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from documented_commands import DOCUMENTED, RunBy, Unrunnable

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DOCUMENTS = (REPO / "README.md", *sorted((REPO / "docs").glob("*.md")))
SHELL_LANGUAGES = frozenset({"sh", "bash", "shell", "console"})
CLIS = ("trustdial", "trustdial-verify")
FENCE = re.compile(r"^```\s*([\w+-]*)\s*$")
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


@dataclass(frozen=True)
class Block:
    """A fenced block: the document, the line of its opening fence, its language tag and its lines."""

    path: Path
    line: int
    language: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Shown:
    """One command as a document shows it (see ``documented_commands`` for the normal form)."""

    path: Path
    line: int
    text: str

    def where(self) -> str:
        return f"{self.path.relative_to(REPO) if self.path.is_relative_to(REPO) else self.path}:{self.line}"


def fenced_blocks(path: Path) -> list[Block]:
    blocks: list[Block] = []
    opened: tuple[int, str] | None = None
    body: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fence = FENCE.match(line)
        if opened is None and fence:
            opened, body = (number, fence.group(1)), []
        elif opened is not None and line.startswith("```"):
            blocks.append(Block(path, opened[0], opened[1], tuple(body)))
            opened = None
        elif opened is not None:
            body.append(line)
    assert opened is None, f"{path}:{opened[0] if opened else 0}: fenced block never closed"
    return blocks


def without_comment(line: str) -> str:
    """``line`` without a trailing shell comment: a ``#`` outside quotes that starts a word."""
    quote = ""
    for index, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index]
    return line


def shell_commands(block: Block) -> list[Shown]:
    """The commands of a shell block: continuation lines joined, comment-only and blank lines skipped."""
    commands: list[Shown] = []
    pending, start = "", 0
    for offset, raw in enumerate(block.lines, start=1):
        line = without_comment(raw).rstrip()
        if not pending and not line.strip():
            continue
        if not pending:
            start = block.line + offset
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        commands.append(Shown(block.path, start, " ".join((pending + line).split())))
        pending = ""
    if pending:
        commands.append(Shown(block.path, start, " ".join(pending.split())))
    return commands


def synopses(block: Block) -> list[Shown]:
    """Usage lines of an untagged block: each line starting with a CLI's name, with its indented continuations."""
    found: list[Shown] = []
    for offset, line in enumerate(block.lines, start=1):
        if line.split(" ", 1)[0] in CLIS:
            found.append(Shown(block.path, block.line + offset, line.strip()))
        elif found and line.startswith((" ", "\t")) and line.strip():
            last = found[-1]
            found[-1] = Shown(last.path, last.line, f"{last.text} {line.strip()}")
    return found


def documented_commands(paths: tuple[Path, ...] = DOCUMENTS) -> list[Shown]:
    return [
        shown
        for path in paths
        for block in fenced_blocks(path)
        if block.language in SHELL_LANGUAGES
        for shown in shell_commands(block)
    ]


def documented_cli_lines(paths: tuple[Path, ...] = DOCUMENTS) -> list[Shown]:
    """Every ``trustdial``/``trustdial-verify`` command of a shell block, and every synopsis of an untagged block."""
    lines = [shown for shown in documented_commands(paths) if shown.text.split(" ", 1)[0] in CLIS]
    for path in paths:
        lines += [shown for block in fenced_blocks(path) if block.language == "" for shown in synopses(block)]
    return lines


def unregistered(shown: list[Shown]) -> list[Shown]:
    return [command for command in shown if command.text not in DOCUMENTED]


@cache
def help_text(words: tuple[str, ...]) -> str:
    done = subprocess.run(
        [str(BIN / words[0]), *words[1:], "--help"], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0 and "usage:" in done.stdout, f"{' '.join(words)} --help: {done.stderr}"
    return done.stdout


def subcommands(help_output: str) -> set[str]:
    """The subcommand names a parser's help lists: its ``{a,b}`` choices and the names under its positionals."""
    names = {name for group in re.findall(r"\{([\w,-]+)\}", help_output) for name in group.split(",")}
    section = help_output.split("positional arguments:", 1)[1] if "positional arguments:" in help_output else ""
    section = section.split("\n\n", 1)[0]
    names |= {match.group(1) for match in re.finditer(r"^ {4}([a-z][\w-]*)", section, re.MULTILINE)}
    return names


def command_path(text: str) -> tuple[str, ...]:
    """The program and the subcommands ``text`` names, as far as each level's ``--help`` lists them."""
    words = text.split()
    path = (words[0],)
    for word in words[1:]:
        if word not in subcommands(help_text(path)):
            break
        path += (word,)
    return path


def markdown_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation other than `-` and `_` dropped, spaces as hyphens."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    outside = "\n".join(
        line for line in _outside_fences(path.read_text(encoding="utf-8").splitlines())
    )
    return {markdown_anchor(match.group(1)) for match in re.finditer(r"^#{1,6} (.+)$", outside, re.MULTILINE)}


def _outside_fences(lines: list[str]) -> list[str]:
    kept, inside = [], False
    for line in lines:
        if line.startswith("```"):
            inside = not inside
        elif not inside:
            kept.append(line)
    return kept


# --- the registry and the documents agree ---


def test_every_documented_command_is_run_by_a_test_or_says_why_not() -> None:
    missing = unregistered(documented_commands())
    assert not missing, "commands shown in the docs with no entry in tests/documented_commands.py (name the test " \
        "that runs each, or why it cannot run here):\n" + "\n".join(f"  {c.where()}: {c.text}" for c in missing)


def test_an_unlisted_command_fails_the_check(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Try:\n\n```sh\nmake demo   # listed\ntrustdial frobnicate --all \\\n    --now  # not listed\n```\n"
    )
    missing = unregistered(documented_commands((page,)))
    assert [(c.line, c.text) for c in missing] == [(5, "trustdial frobnicate --all --now")]


def test_every_registry_entry_is_still_shown_in_a_document() -> None:
    stale = set(DOCUMENTED) - {command.text for command in documented_commands()}
    assert not stale, f"entries of tests/documented_commands.py that no document shows: {sorted(stale)}"


def test_every_named_test_exists_and_every_reason_says_what_is_checked_instead() -> None:
    for command, entry in DOCUMENTED.items():
        if isinstance(entry, Unrunnable):
            assert entry.instead.strip(), command
            continue
        assert isinstance(entry, RunBy)
        file, _, name = entry.test.partition("::")
        source = REPO / file
        assert source.is_file(), f"{command!r}: {file} does not exist"
        tree = ast.parse(source.read_text(encoding="utf-8"))
        functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert name in functions, f"{command!r}: {file} defines no test function {name}"


# --- the commands themselves ---


@pytest.mark.parametrize("shown", documented_cli_lines(), ids=lambda shown: f"{shown.where()}")
def test_documented_subcommand_and_flags_are_in_its_help(shown: Shown) -> None:
    path = command_path(shown.text)
    assert len(path) > 1, f"{shown.where()}: {shown.text!r} names no subcommand of {path[0]}"
    listed = set(FLAG.findall(help_text(path)))
    unknown = [flag for flag in FLAG.findall(shown.text) if flag not in listed]
    assert not unknown, f"{shown.where()}: {' '.join(path)} --help lists no {unknown}"


def test_documented_make_targets_exist() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([\w.-]+):", makefile, re.MULTILINE))
    used = {(c.where(), c.text.split()[1]) for c in documented_commands() if c.text.startswith("make ")}
    assert used
    missing = [(where, target) for where, target in sorted(used) if target not in targets]
    assert not missing, f"make targets the docs use that the Makefile lacks: {missing}"


def test_relative_links_and_anchors_resolve() -> None:
    broken: list[str] = []
    for document in DOCUMENTS:
        for line in _outside_fences(document.read_text(encoding="utf-8").splitlines()):
            for target in LINK.findall(line):
                if re.match(r"^[a-z]+:", target):
                    continue
                file, _, anchor = target.partition("#")
                resolved = (document.parent / file).resolve() if file else document
                if not resolved.exists():
                    broken.append(f"{document.name}: {target} (no such file)")
                elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                    broken.append(f"{document.name}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_the_readme_draws_the_runtime_and_the_publication_path() -> None:
    diagrams = [block for block in fenced_blocks(REPO / "README.md") if block.language == "mermaid"]
    assert len(diagrams) == 2
    runtime, publication = ("\n".join(block.lines) for block in diagrams)
    for part in ("gateway", "vsock", "NSM", "receipt key", "sealer", "prover", "trustdial-verify"):
        assert part in runtime, part
    for part in ("EIF", "PCR", "manifest", "SSM", "boot", "KMS", "trustdial-verify"):
        assert part in publication, part
