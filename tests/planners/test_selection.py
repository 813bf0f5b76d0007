"""Selection functions against hand-made score tables."""

from __future__ import annotations

import numpy as np
import pytest

from planners.selection import gather, mask_nonfinite, select_best, top_k, uniform_choice


def test_select_best_is_the_argmax_with_ties_to_the_lowest_index_and_nan_losing():
    scores = np.array(
        [
            [0.1, 0.7, 0.3],  # clear winner
            [0.5, 0.5, 0.2],  # tie: the lowest index
            [np.nan, 0.0, -1.0],  # NaN never wins
            [-np.inf, -np.inf, -5.0],
        ]
    )
    np.testing.assert_array_equal(select_best(scores), [1, 0, 1, 2])
    assert select_best(scores).dtype == np.int64


def test_top_k_orders_best_first_and_keeps_ties_in_index_order():
    scores = np.array([[0.2, 0.9, 0.2, 0.5], [1.0, 1.0, 1.0, 0.0]])
    np.testing.assert_array_equal(top_k(scores, 3), [[1, 3, 0], [0, 1, 2]])
    with pytest.raises(ValueError, match="k must be in"):
        top_k(scores, 5)


def test_gather_takes_the_chosen_chunk_of_each_env():
    proposals = np.arange(2 * 3 * 4 * 2, dtype=np.float32).reshape(2, 3, 4, 2)
    chosen = gather(proposals, np.array([2, 0]))
    np.testing.assert_array_equal(chosen[0], proposals[0, 2])
    np.testing.assert_array_equal(chosen[1], proposals[1, 0])
    chosen[0] += 1  # a copy: the proposals are untouched
    assert proposals[0, 2, 0, 0] == 16


def test_non_finite_proposals_are_never_selected_while_a_finite_one_exists():
    proposals = np.zeros((1, 3, 4, 2))
    proposals[0, 1, 2, 0] = np.nan
    scores = mask_nonfinite(np.array([[0.1, 0.9, 0.5]]), proposals)
    np.testing.assert_array_equal(scores, [[0.1, -np.inf, 0.5]])
    assert select_best(scores)[0] == 2


def test_uniform_choice_is_seeded_and_covers_every_proposal():
    first = uniform_choice(np.random.default_rng(3), 1000, 4)
    again = uniform_choice(np.random.default_rng(3), 1000, 4)
    np.testing.assert_array_equal(first, again)
    counts = np.bincount(first, minlength=4)
    assert counts.min() > 200  # about 250 each
    with pytest.raises(ValueError):
        uniform_choice(np.random.default_rng(0), 2, 0)
