"""The one base class of every mistake a user can make and fix.

A `UserError` (a bad recipe, a missing file, an unknown name, a reward that misbehaves) ends
`r1kit` with its message and exit code 2, in one place (`r1kit/cli/app.py`); anything else is
a bug in r1kit and stays a traceback. `rewards/` and `rollout/` are leaves that cannot import
this: the floor turns their errors into a `UserError` where it calls them.
"""


class UserError(ValueError):
    """Something the user asked for is wrong; the message names it and says how to fix it."""
