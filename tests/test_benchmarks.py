"""The README's tables are rebuilt from the committed benchmark results: every builder runs on them."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def update_readme():
    spec = importlib.util.spec_from_file_location("update_readme", ROOT / "benchmarks" / "update_readme.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_readme_table_builds_from_the_committed_results(update_readme):
    readme = (ROOT / "README.md").read_text()
    for name, build in update_readme.TABLES.items():
        table = build()
        assert table, f"table {name}: no results committed"
        assert f"<!-- table:{name} -->\n{table}\n<!-- /table:{name} -->" in readme, f"table {name}: README is stale"


def test_fast_recipe_rows_are_the_ablation_runs_of_its_own_variant(update_readme):
    runs = update_readme.fast_recipe_runs()
    assert runs and all(r["config"]["model"] == "resdropnet_s" for r in runs)
    assert all(r["config"]["model_overrides"].get("drop_placement", "mid") == "mid" for r in runs)
