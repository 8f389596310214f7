"""The built wheel: what it carries, and (slow tier) that it works installed away from the repo."""

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import yaml

from r1kit.recipe import RECIPES_DIR, builtin_recipes

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["r1kit", "r1kit/cli", "r1kit/learner", "grpo", "distill", "rollout", "rewards"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The project's wheel, built once into a temporary directory."""
    out = tmp_path_factory.mktemp("dist")
    build = [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out)]
    subprocess.run([*build, str(ROOT)], check=True, capture_output=True)
    return next(out.glob("r1kit-*.whl"))


def names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_wheel_carries_every_shipped_recipe(wheel):
    shipped = {f"r1kit/recipes/{name}.yaml" for name in builtin_recipes()}
    assert shipped and shipped <= names(wheel)


def test_wheel_carries_the_examples(wheel):
    assert "r1kit/recipes/examples/custom_reward.py" in names(wheel)


def test_wheel_carries_every_package(wheel):
    assert {f"{package}/__init__.py" for package in PACKAGES} <= names(wheel)


def test_wheel_declares_the_r1kit_command(wheel):
    with zipfile.ZipFile(wheel) as archive:
        entry = next(n for n in archive.namelist() if n.endswith("entry_points.txt"))
        assert "r1kit = r1kit.cli:app" in archive.read(entry).decode()


def test_top_level_recipes_is_the_packaged_directory():
    assert (ROOT / "recipes").resolve() == RECIPES_DIR


def cli(*args: str, cwd: Path, r1kit: list[str] | None = None) -> subprocess.CompletedProcess:
    """Run the r1kit command (the repo's, unless told) from `cwd`."""
    command = r1kit or [sys.executable, "-m", "r1kit.cli"]
    env = {"PYTHONPATH": str(ROOT)} if r1kit is None else {}
    return subprocess.run(
        [*command, *args], cwd=cwd, capture_output=True, text=True, env={"PATH": "/usr/bin", **env}
    )


def test_version_is_the_package_metadata(tmp_path):
    import importlib.metadata

    result = cli("--version", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.split() == [
        "r1kit",
        importlib.metadata.version("r1kit"),
    ]


def test_builtin_recipe_runs_by_name_from_any_directory(tmp_path):
    result = cli("train", "r1_zero_arithmetic_smollm2", "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "r1_zero_arithmetic_smollm2" in result.stdout


def test_a_file_of_that_name_wins_over_the_builtin(tmp_path):
    recipe = yaml.safe_load((RECIPES_DIR / "r1_zero_arithmetic_smollm2.yaml").read_text())
    recipe["output"] = {**recipe.get("output", {}), "name": "mine"}
    (tmp_path / "r1_zero_arithmetic_smollm2").write_text(yaml.safe_dump(recipe))
    result = cli("train", "r1_zero_arithmetic_smollm2", "--dry-run", cwd=tmp_path)
    assert result.returncode == 0 and "mine" in result.stdout


def test_unknown_recipe_name_exits_2_listing_the_builtins(tmp_path):
    result = cli("train", "no_such_recipe", cwd=tmp_path)
    assert result.returncode == 2
    assert "r1_zero_arithmetic_smollm2" in result.stderr and "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> list[str]:
    """The wheel installed into a fresh venv; its dependencies are this venv's (no network)."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site = next((venv / "lib").glob("python*/site-packages"))
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # --ignore-installed: this venv's own r1kit (seen through the .pth) is left alone
    pip = [str(venv / "bin/python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index"]
    pip.append("--ignore-installed")
    subprocess.run([*pip, str(wheel)], check=True, capture_output=True)
    return [str(venv / "bin/r1kit")]


@pytest.mark.slow
def test_installed_wheel_lists_its_recipes(installed, tmp_path):
    result = cli("recipes", cwd=tmp_path, r1kit=installed)
    assert result.returncode == 0 and all(name in result.stdout for name in builtin_recipes())


@pytest.mark.slow
def test_installed_wheel_prints_its_version(installed, tmp_path):
    result = cli("--version", cwd=tmp_path, r1kit=installed)
    assert result.returncode == 0 and result.stdout.startswith("r1kit ")


@pytest.mark.slow
def test_installed_wheel_dry_runs_a_builtin_by_name(installed, tmp_path):
    result = cli("train", "r1_zero_arithmetic_smollm2", "--dry-run", cwd=tmp_path, r1kit=installed)
    assert result.returncode == 0, result.stderr
    assert "r1_zero_arithmetic_smollm2" in result.stdout


@pytest.mark.slow
def test_installed_wheel_imports_from_itself_not_the_repo(installed, tmp_path):
    python = str(Path(installed[0]).with_name("python"))
    where = subprocess.run(
        [python, "-c", "import r1kit.recipe as r; print(r.RECIPES_DIR)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin"},  # no PYTHONPATH pointing at the repo
    ).stdout.strip()
    assert "site-packages" in where and not where.startswith(str(ROOT))
