"""Distillation: a teacher's reasoning traces (read, or generated and filtered) fine-tune a
student (SFT), or the student learns on its own samples scored by the teacher (on-policy, reverse
KL); both are objectives of the floor's learner core. `r1kit distill` evaluates before and after."""
