"""Every recipe computes the same update on one device and on two mirrored replicas (same global batch).

The comparison, and why its bound holds on any x86-64 CPU, is in tests/tasks/mirrored.py; the
recipes are the cases of tests/tasks/mirrored_cases.py. One process runs them all (TensorFlow and
the logical devices start once) and each recipe is asserted on its own.
"""

import pytest

from tests.tasks import mirrored
from tests.tasks.mirrored_cases import CASES

# A long end-to-end check: `make test-slow` runs it (CI runs both targets), `make test` leaves it out.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def results():
    return mirrored.compare_every_case()


@pytest.mark.parametrize("recipe", sorted(CASES))
def test_two_replicas_give_one_devices_gradients_and_a_one_example_change_would_show(results, recipe):
    result = results[recipe]
    for update, differences in result["mirrored"].items():
        assert len(differences) == mirrored.STEPS
        # Gradients must exist for the comparison to mean anything (a zero gradient matches anything).
        assert result["gradient_norm"][update] > 0, (recipe, update)
        assert max(differences) < mirrored.BOUND, (recipe, update, differences)
        # The control: one example of 8 replaced changes the gradient far beyond the bound, so a fault
        # that mishandles even one example's share on some replica fails the line above.
        assert result["control"][update] > mirrored.CONTROL_MARGIN * mirrored.BOUND, (recipe, update, result["control"])
    assert result["draws_equal"], recipe  # random targets are keyed by global example, not replica
