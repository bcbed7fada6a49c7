"""The documentation: the site builds strictly, the CLI page is every command's --help, every documented name has a
docstring, and the project speaks only of itself."""

import inspect
import os
import re
import subprocess
import sys
from importlib import import_module

from conftest import PROJECT_ROOT, documentation_pages, load_script

DOCS = PROJECT_ROOT / "docs"


def test_the_site_builds_with_warnings_as_errors(tmp_path):
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    site = tmp_path / "site"
    assert (site / "api" / "index.html").read_text().count('class="doc doc-heading"') >= 25
    cards = [site / "models" / name / "index.html" for name in ("default", "fast")]
    assert all("Model card" in card.read_text() for card in cards)
    assert (site / "models" / "default" / "confusion_matrix.png").is_file()
    assert (site / "benchmarks" / "results" / "ablation.png").is_file()


def test_the_cli_page_is_every_commands_help():
    cli_reference = load_script("docs/cli_reference.py")
    page = (DOCS / "cli.md").read_text()
    assert page == cli_reference.page_with_reference(page), "docs/cli.md is stale: run python docs/cli_reference.py"
    for words, _parser in cli_reference.command_parsers(__import__("resdropnet.cli", fromlist=["build_parser"]).build_parser()):
        assert f"### `{' '.join(words)}`" in page


def documented_objects():
    """Every object the API page documents (its `::: module.name` lines), with its public methods."""
    for path in re.findall(r"^::: ([\w.]+)$", (DOCS / "api.md").read_text(), re.M):
        module_name, name = path.rsplit(".", 1)
        obj = getattr(import_module(module_name), name)
        yield path, obj
        if inspect.isclass(obj):
            for member, value in vars(obj).items():
                if not member.startswith("_") and (inspect.isfunction(value) or isinstance(value, property)):
                    yield f"{path}.{member}", value


def test_every_documented_name_and_its_public_methods_have_a_docstring():
    missing = [path for path, obj in documented_objects() if not (obj.__doc__ or "").strip()]
    assert not missing, f"no docstring: {', '.join(missing)}"


def test_every_public_module_name_has_a_docstring():
    names = [(module, name) for module in ("resdropnet.inference", "resdropnet.models", "resdropnet.data")
             for name in import_module(module).__all__]
    missing = [f"{module}.{name}" for module, name in names
               if callable(getattr(import_module(module), name)) and not (getattr(import_module(module), name).__doc__ or "").strip()]
    assert not missing, f"no docstring: {', '.join(missing)}"


# Built from parts so that this file does not match itself.
FORBIDDEN = re.compile("|".join([r"\bsess" + r"ions? [0-9]", r"\ble" + "nt\\b", "work" + "place", "/t" + "mp/", "/ro" + "ot/",
                                 "/ho" + "me/"]), re.I)
SCANNED_SUFFIXES = {".py", ".md", ".json", ".yaml", ".yml", ".toml", ".html", ".js", ".css", ".txt", ""}


def scanned_files():
    tracked = subprocess.run(["git", "ls-files"], cwd=PROJECT_ROOT, capture_output=True, text=True).stdout.split()
    for name in tracked:
        path = PROJECT_ROOT / name
        if path.suffix in SCANNED_SUFFIXES and path.is_file() and path.stat().st_size < 5_000_000:
            yield path
    yield from documentation_pages()


def test_the_project_speaks_only_of_itself():
    """No machine paths, and no word of how machines were had or of the sessions that worked on it."""
    found = []
    for path in set(scanned_files()):
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if FORBIDDEN.search(line):
                found.append(f"{path.relative_to(PROJECT_ROOT)}:{number}: {line.strip()[:120]}")
    assert not found, "\n".join(found)


def test_the_readme_is_for_users():
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 400
    for section in ("## Install", "## Use", "## Models", "## Results", "## Reproduce our models", "## Data licence"):
        assert section in readme
    for link in re.findall(r"\]\((docs/[\w.-]+\.md)\)", readme):
        assert (PROJECT_ROOT / link).is_file(), link
