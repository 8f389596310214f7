"""A script that runs the `r1kit` CLI (its arguments after the script's name) in a process
whose learner sends itself SIGTERM at its step number STOP_AT (an environment variable), as a
scheduler pre-empting a run would: `[sys.executable, stop_script.__file__, "distill", ...]`."""

import os
import signal
import sys

from r1kit.learner.core import Learner

real_step, steps = Learner.step, []


def step(*args):
    steps.append(1)
    if len(steps) == int(os.environ["STOP_AT"]):
        os.kill(os.getpid(), signal.SIGTERM)
    return real_step(*args)


if __name__ == "__main__":
    Learner.step = step
    from r1kit.cli import main

    sys.argv[0] = "r1kit"
    main()
