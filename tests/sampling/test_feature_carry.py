"""FeatureCarry: a batch's carried rows, taken once."""
import numpy as np

from graphtrain.sampling.feature_carry import FeatureCarry


def test_carry_collects_rows_until_taken_and_resets():
    carry = FeatureCarry(2)
    ids, rows, complete = carry.take()
    assert ids.shape == (0,) and rows.shape == (0, 2) and not complete
    carry.add(np.array([5, 9]), np.ones((2, 2), np.float32))
    carry.add(np.zeros(0, np.int64), np.zeros((0, 2), np.float32))  # an owner with nothing to carry
    carry.add(np.array([1]), np.full((1, 2), 3, np.float32))
    carry.complete = True
    ids, rows, complete = carry.take()
    assert ids.tolist() == [5, 9, 1] and rows[:, 0].tolist() == [1, 1, 3] and complete
    ids, rows, complete = carry.take()  # taken: empty, and no longer complete
    assert ids.size == 0 and not complete
    carry.add(np.array([4]), np.zeros((1, 2), np.float32))
    carry.complete = True
    carry.reset()  # a new batch forgets the rows of one whose lookup never ran
    ids, _, complete = carry.take()
    assert ids.size == 0 and not complete
