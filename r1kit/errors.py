"""The one base class of every mistake a user can make and fix.

A `UserError` (a bad recipe, a missing file, an unknown name, a reward that misbehaves) ends
`r1kit` with its message and exit code 2, in one place (`r1kit/cli/app.py`); anything else is
a bug in r1kit and stays a traceback. `rewards/` and `rollout/` are leaves that cannot import
this: the floor turns their errors into a `UserError` where it calls them.
"""


class UserError(ValueError):
    """Something the user asked for is wrong; the message names it and says how to fix it."""


NODE_LOST_EXIT = 3  # `r1kit train` when a node holding a learner rank is lost (docs/scale_out.md)


class NodeLost(RuntimeError):
    """A Ray node holding a learner rank was lost mid-run: the ranks' state went with it, so the
    run stops with its last checkpoint (exit NODE_LOST_EXIT) and `--resume` continues."""
