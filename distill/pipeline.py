"""What `r1kit distill` runs once its inputs are read (`distill/inputs.py`): generate and
filter traces (unless given), evaluate the student, SFT or on-policy distillation, evaluate
again, then write final/ with its card (distill/card.py). A stop signal ends them at a safe
point (at once while generating or evaluating, else after the learner step under way, with a
checkpoint); a resumed run skips what is done."""

from __future__ import annotations

import json

import torch

from distill.card import distill_card
from distill.evaluate import evaluate_student, plot_before_after
from distill.filter import select
from distill.generate import generate_traces
from distill.inputs import Inputs, SFTData, sft_data
from distill.on_policy import fit_on_policy
from distill.recipe import DistillRecipe, TracesConfig
from distill.sft import SFT, Parts, sft_learner, total_steps
from distill.store import write_traces
from distill.student import load_student, teacher_model_name
from distill.traces import TracesError, load_traces
from r1kit import durable
from r1kit.learner.checkpoint import save_model
from r1kit.models import load_model
from r1kit.rundir import RunDir
from r1kit.stopping import Stopper, StopRequested


class Distillation:
    """The stages of one run; `fit` returns the signal that stopped it, None when done."""

    def __init__(self, recipe: DistillRecipe, run: RunDir, inputs: Inputs):
        self.recipe, self.run, self.inputs = recipe, run, inputs
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.stopper = Stopper()
        self.results: dict = {}

    def fit(self, resume: bool = False) -> int | None:
        """Every stage, each skipped when a resumed run has finished it already; the
        before/after summaries go to `results`."""
        with self.stopper:
            try:
                torch.manual_seed(self.recipe.seed)
                if self.recipe.mode == "on_policy":
                    self.results = self.on_policy(resume)
                else:
                    self.results = self.sft(resume)
            except StopRequested:
                return self.stopper.signum
        return None

    def sft(self, resume: bool) -> dict:
        """Traces (given, or generated and filtered), evaluate, SFT, evaluate."""
        recipe, run = self.recipe, self.run
        data = self.inputs.sft or self.generated()
        model, tokenizer = load_student(recipe, self.device)
        results = self.evaluate_before(model, tokenizer)
        learner = sft_learner(model, recipe.sft, total_steps(recipe.sft, len(data.examples)))
        parts = Parts(learner, tokenizer)
        sft = SFT(recipe.sft, run, parts, data.examples, recipe.seed, self.stopper)
        counts = {"traces": data.traces, "examples": len(data.examples), "too_long": data.too_long}
        durable.write_text(run.path / "sft.json", json.dumps(counts))
        sft.fit(resume=resume)
        results |= self.evaluate_after(learner.model, tokenizer)
        sft.save_final(recipe.sft.merge_lora, distill_card(recipe, run))
        return results

    def on_policy(self, resume: bool) -> dict:
        """Evaluate, distill on the student's own samples scored by the teacher, evaluate."""
        recipe = self.recipe
        teacher, _ = load_model(
            teacher_model_name(recipe.teacher), recipe.student.dtype, self.device
        )
        teacher.requires_grad_(False)
        model, tokenizer = load_student(recipe, self.device)
        results = self.evaluate_before(model, tokenizer)
        cfg = recipe.on_policy
        learner = sft_learner(model, recipe.sft, cfg.steps, cfg.temperature)
        parts = Parts(learner, tokenizer, self.inputs.stream)
        fit_on_policy(recipe, self.run, parts, teacher, self.stopper, resume)
        results |= self.evaluate_after(model, tokenizer)
        save_model(self.run.final, parts, distill_card(recipe, self.run))
        return results

    def evaluate_before(self, model, tokenizer) -> dict:
        """eval/before/ unless off or already written (a resumed run)."""
        out = self.run.path / "eval" / "before"
        if not self.recipe.eval.before or (out / "summary.json").is_file():
            return {}
        with self.stopper.interruptible():
            return {
                "before": evaluate_student(
                    self.recipe, model, tokenizer, self.inputs.eval_rows, out
                )
            }

    def evaluate_after(self, model, tokenizer) -> dict:
        """eval/after/ and the before/after plot."""
        results = {}
        if self.recipe.eval.after:
            out = self.run.path / "eval" / "after"
            with self.stopper.interruptible():
                results["after"] = evaluate_student(
                    self.recipe, model, tokenizer, self.inputs.eval_rows, out
                )
        if (self.run.path / "eval").is_dir():
            plot_before_after(self.run.path)
        return results

    def generated(self) -> SFTData:
        """Generate (resuming what is on disk), filter, write traces/, report acceptance; the
        kept traces as SFT data."""
        recipe, run = self.recipe, self.run
        records = generate_traces(recipe, run.path / "generated.jsonl", self.stopper, self.device)
        kept, report = select(records, recipe.filter)
        if not kept:
            raise TracesError(
                f"the filter accepted none of the teacher's {report['generated']} traces: loosen "
                "filter.accept or the length bounds, or sample more (generate.samples)"
            )
        template = recipe.generate.template
        path = write_traces(run.path / "traces", kept, report, recipe.teacher, template)
        print(
            f"traces: {report['accepted']}/{report['generated']} accepted "
            f"({report['acceptance']:.1%}), {report['kept']} kept; "
            f"{len(report['problems_without_accepted'])} of {report['problems']} problems with none"
        )
        traces = load_traces(TracesConfig(source=str(path)))
        fix = (
            "raise sft.max_length and train on these traces in a new run (traces.source: "
            f"{path}), or start this one again with --overwrite"
        )
        return sft_data(traces, self.inputs.tokenizer, recipe, str(path), fix)
