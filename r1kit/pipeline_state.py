"""A pipeline's progress, `pipeline.json` in its run directory: each stage that started, the
fingerprint of the recipe it started with (`stage_hash`), and whether it finished (with its
wall time and the peak RSS of the process by then). Resume reads
it to skip finished stages and to refuse one whose recipe has changed since it started."""

from __future__ import annotations

import json
from pathlib import Path

from r1kit import durable
from r1kit.recipe import RecipeError

STATE = "pipeline.json"


class PipelineState:
    """The stages of one pipeline run, by name: {"hash": ..., "finished": bool}."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / STATE
        self.stages: dict[str, dict] = self._read()

    def started(self, name: str) -> bool:
        return name in self.stages

    def finished(self, name: str) -> bool:
        return self.stages.get(name, {}).get("finished", False)

    def start(self, name: str, fingerprint: str) -> None:
        """Record that stage `name` runs with the recipe of `fingerprint` (kept on a resume)."""
        self.stages.setdefault(name, {"hash": fingerprint, "finished": False})
        self._write()

    def finish(self, name: str, measured: dict[str, float]) -> None:
        """Record that stage `name` finished, with what it took (`measured`: its wall time,
        the process's peak RSS so far)."""
        self.stages[name] |= {"finished": True, **measured}
        self._write()

    def _read(self) -> dict[str, dict]:
        if not self.path.is_file():
            return {}
        try:
            return json.loads(self.path.read_text())["stages"]
        except (ValueError, KeyError, TypeError):
            raise RecipeError(
                f"{self.path}: unreadable; restore it, or start afresh with --overwrite"
            ) from None

    def _write(self) -> None:
        durable.write_text(self.path, json.dumps({"stages": self.stages}, indent=2))
