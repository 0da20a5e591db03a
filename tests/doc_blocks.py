"""The fenced examples of the README and the guides under docs/, read as the tests that run them
need them (tests/test_readme.py, tests/analysis/test_doc_examples.py)."""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# The pages a user follows: the front page and the guides. (The contracts and the providers' API
# reference describe tables and payloads; their fenced blocks are not examples to run.)
GUIDES = (
    "setup.md",
    "operations.md",
    "querying.md",
    "postgres.md",
    "destinations.md",
    "dagster.md",
    "deletions.md",
    "remap.md",
    "development.md",
)
PAGES = (REPO / "README.md", *(REPO / "docs" / name for name in GUIDES))

# A fence may be indented (a block inside a list item); its closing fence has the same indent.
_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w-]*)[ \t]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S)
SHELL_LANGUAGES = frozenset({"sh", "shell", "bash", "console", "cron"})


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    lang: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """Every fenced block of `page`, its text dedented."""
    text = page.read_text(encoding="utf-8")
    found = []
    for match in _FENCE.finditer(text):
        body = textwrap.dedent(match["body"])
        found.append(Block(page, text.count("\n", 0, match.start()) + 1, match["lang"].lower(), body))
    return found


def page_blocks(languages: frozenset[str] | set[str]) -> list[Block]:
    """The blocks of every page in one of `languages`."""
    return [block for page in PAGES for block in blocks(page) if block.lang in languages]


def sql_statements(block: Block) -> list[str]:
    """The statements of an `sql` block, each with the comment lines before it. The examples end
    every statement with `;` at the end of a line."""
    statements, lines = [], []
    for line in block.text.splitlines():
        lines.append(line)
        if line.rstrip().endswith(";"):
            statements.append("\n".join(lines).strip())
            lines = []
    rest = "\n".join(lines).strip()
    if any(line.strip() and not line.lstrip().startswith("--") for line in rest.splitlines()):
        statements.append(rest)
    return statements


def leading_comment(sql: str) -> str:
    """The comment lines a statement starts with, joined (`-- Overdue ...`), without the dashes."""
    lines = []
    for line in sql.strip().splitlines():
        if not line.lstrip().startswith("--"):
            break
        lines.append(line.lstrip()[2:].strip())
    return " ".join(lines)
