"""Shared fixtures: the real FER2013 archive (skipped when absent) and small fixtures built from it."""

import csv
import importlib.util
import os
import re
import shlex
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from resdropnet.labels import EMOTIONS

if os.environ.get("PYTEST_XDIST_WORKER"):
    # The workers share the cores: one thread each (inherited by the commands the tests start), since two
    # multi-threaded trainings on the same cores spend their time waiting on each other.
    os.environ.setdefault("OMP_NUM_THREADS", "1")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
FER_ZIP = PROJECT_ROOT.parent / "shared" / "data" / "fer2013.zip"
USAGE_BY_PREFIX = {"Training": "Training", "PublicTest": "PublicTest", "PrivateTest": "PrivateTest"}


def pytest_collection_modifyitems(items):
    """The slow tests first, so that the pytest-xdist workers share them and finish on the quick ones together."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def load_script(relative_path: str):
    """A project script that is not part of the package (benchmarks/, docs/), imported as a module."""
    path = PROJECT_ROOT / relative_path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def documentation_pages() -> list[Path]:
    """The README and the pages of the documentation site."""
    return [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]


def documentation_text() -> str:
    return "\n".join(page.read_text() for page in documentation_pages())


def readme_python_block(marker: str) -> str:
    """The one ```python block of the README or the documentation that holds marker, without its fences."""
    text = documentation_text()
    (block,) = [b.split("\n", 1)[1].split("```")[0] for b in text.split("```python")[1:] if marker in b]
    return block


def readme_shell_commands(program: str) -> list[list[str]]:
    """The words of every call of program in the ```bash blocks of the README and the documentation, its
    [optional parts] left out."""
    calls = []
    for block in re.findall(r"```bash\n(.*?)```", documentation_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            lexer = shlex.shlex(re.sub(r"\[[^\]]*\]", "", line), posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            words = []
            for token in [*lexer, ";"]:
                if token.strip("&;|()"):
                    words.append(token)
                    continue
                if words[:1] == [program]:
                    calls.append(words)
                words = []
    return calls


@pytest.fixture(scope="session")
def fer_zip() -> Path:
    if not FER_ZIP.is_file():
        pytest.skip(f"FER2013 archive not found at {FER_ZIP}; put fer2013.zip in ../shared/data/ to run this test")
    return FER_ZIP


@pytest.fixture(scope="session")
def real_faces(fer_zip) -> list[tuple[str, bytes]]:
    """A few real FER2013 JPEGs per split and emotion: (member name, bytes)."""
    picked: dict[tuple[str, str], list[str]] = {}
    with zipfile.ZipFile(fer_zip) as archive:
        for name in archive.namelist():
            parts = name.split("/")
            if len(parts) != 4 or not parts[3]:
                continue
            key = (parts[3].split("_")[0], parts[2])
            if len(picked.setdefault(key, [])) < 3:
                picked[key].append(name)
        return [(name, archive.read(name)) for names in picked.values() for name in names]


def write_folder_fixture(faces, root: Path) -> Path:
    """The image-folder layout (train/ and test/ with emotion sub-folders) from real faces."""
    for name, data in faces:
        _, top, emotion, file_name = name.split("/")
        target = root / top / emotion / file_name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return root


def write_csv_fixture(faces, path: Path) -> Path:
    """fer2013.csv (emotion,pixels,Usage) holding the same real faces, decoded independently."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["emotion", "pixels", "Usage"])
        for name, data in faces:
            _, _, emotion, file_name = name.split("/")
            pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
            writer.writerow([EMOTIONS.index(emotion), " ".join(map(str, pixels.ravel())), file_name.split("_")[0]])
    return path


@pytest.fixture
def folder_fixture(real_faces, tmp_path) -> Path:
    return write_folder_fixture(real_faces, tmp_path / "fer2013")


@pytest.fixture
def csv_fixture(real_faces, tmp_path) -> Path:
    return write_csv_fixture(real_faces, tmp_path / "fer2013.csv")


@pytest.fixture(scope="session")
def fer_cache(fer_zip, tmp_path_factory, worker_id) -> Path:
    """The real archive as a prepared cache, built once per test run and shared by the pytest-xdist workers."""
    from filelock import FileLock

    from resdropnet import data

    shared = tmp_path_factory.getbasetemp() if worker_id == "master" else tmp_path_factory.getbasetemp().parent
    out = shared / "fer-cache"
    with FileLock(str(shared / "fer-cache.lock")):
        if not (shared / "fer-cache.done").exists():
            data.prepare(fer_zip, out)
            (shared / "fer-cache.done").touch()
    return out
