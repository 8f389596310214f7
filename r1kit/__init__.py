"""r1kit: the shared floor (recipe schema, models, data, templates, groups, evaluation, run
directory, and the learner core in `r1kit.learner`) and, in `r1kit.cli`, the commands on top."""

__version__ = "0.1.0"
