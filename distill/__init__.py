"""Distillation: a teacher's reasoning traces (read, or generated and filtered) fine-tune a
student (SFT), which `r1kit distill` then evaluates before and after."""
