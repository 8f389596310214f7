import os
import signal

import pytest

from r1kit.stopping import StopNow, Stopper, StopRequested, exit_code


@pytest.fixture
def stopper():
    with Stopper() as stopper:
        yield stopper


def test_the_previous_handlers_come_back_after_the_block():
    before = signal.getsignal(signal.SIGTERM)
    with Stopper():
        assert signal.getsignal(signal.SIGTERM) != before
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_first_signal_outside_an_interruptible_phase_only_asks_to_stop(stopper):
    os.kill(os.getpid(), signal.SIGTERM)
    assert stopper.requested and stopper.signum == signal.SIGTERM


def test_a_first_signal_inside_an_interruptible_phase_cuts_it(stopper):
    with pytest.raises(StopRequested), stopper.interruptible():
        os.kill(os.getpid(), signal.SIGINT)
    assert stopper.signum == signal.SIGINT


def test_entering_an_interruptible_phase_after_a_signal_stops_at_once(stopper):
    os.kill(os.getpid(), signal.SIGINT)
    with pytest.raises(StopRequested), stopper.interruptible():
        pytest.fail("the phase must not start")


def test_a_second_signal_stops_at_once(stopper):
    os.kill(os.getpid(), signal.SIGINT)
    with pytest.raises(StopNow):
        os.kill(os.getpid(), signal.SIGINT)


def test_exit_codes_follow_the_shell_convention():
    assert exit_code(signal.SIGINT) == 130 and exit_code(signal.SIGTERM) == 143
