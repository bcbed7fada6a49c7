"""MkDocs hooks: the shipped models' cards and the benchmark figures join the site from where they live.

The cards are written by `resdropnet ship` inside the package and the figures by the benchmarks; the site shows
those files themselves, so no copy can go stale.
"""

from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "src" / "resdropnet" / "weights"
FIGURES = ROOT / "benchmarks" / "results"


def on_files(files, config):
    for card in sorted(WEIGHTS.glob("*/MODEL_CARD.md")):
        folder = f"models/{card.parent.name}"
        files.append(File.generated(config, f"{folder}/index.md", abs_src_path=str(card)))
        for image in sorted(card.parent.glob("*.png")):
            files.append(File.generated(config, f"{folder}/{image.name}", abs_src_path=str(image)))
    for figure in sorted(FIGURES.glob("*.png")):
        files.append(File.generated(config, f"benchmarks/results/{figure.name}", abs_src_path=str(figure)))
    return files
