"""Writes every `resdropnet` command's --help into docs/cli.md, between its cli-reference markers.

    python docs/cli_reference.py          # rewrite the page
    python docs/cli_reference.py --check  # exit 1 if the page differs from today's --help
"""

import argparse
import os
import re
import sys
from pathlib import Path

PAGE = Path(__file__).parent / "cli.md"
MARKERS = re.compile(r"(<!-- cli-reference -->\n).*?(<!-- /cli-reference -->)", re.S)


def command_parsers(parser: argparse.ArgumentParser, words: tuple[str, ...] = ("resdropnet",)):
    """(words, parser) for the command and each sub-command, depth first, in the order they were added."""
    yield words, parser
    for action in parser._actions:  # argparse keeps sub-commands only here
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from command_parsers(child, (*words, name))


def reference() -> str:
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal's width: fix it so the page is reproducible
    from resdropnet.cli import build_parser

    sections = []
    for words, parser in command_parsers(build_parser()):
        sections.append(f"### `{' '.join(words)}`\n\n```text\n{parser.format_help().rstrip()}\n```\n")
    return "\n".join(sections)


def page_with_reference(page: str) -> str:
    return MARKERS.sub(lambda m: m.group(1) + reference() + m.group(2), page)


def main() -> int:
    page = PAGE.read_text()
    updated = page_with_reference(page)
    if "--check" in sys.argv[1:]:
        if updated != page:
            print(f"{PAGE} differs from the commands' --help: run python docs/cli_reference.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(updated)
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
