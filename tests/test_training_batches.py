"""The one mini-batch iterator (xpscratch.training.batches), against NumPy's permutation."""

from __future__ import annotations

import numpy as np

import xpscratch
from xpscratch.random import RandomStream, permutation
from xpscratch.training.batches import (
    batch_at,
    batch_count,
    batch_indices,
    epoch_order,
    iterate_batches,
)

HOST = xpscratch.backend.host_namespace()


def _host(purpose, epoch, n, seed=3):
    return np.asarray(permutation(seed, purpose, epoch, n, xp=HOST))


def test_batch_count_with_and_without_the_last_partial_batch():
    assert [batch_count(n, 4) for n in (0, 1, 4, 5, 8, 10)] == [0, 1, 1, 2, 2, 3]
    assert [batch_count(n, 4, drop_last=True) for n in (1, 4, 5, 8, 10)] == [1, 1, 1, 2, 2]


def test_an_epoch_is_the_streams_permutation_cut_in_batches(backend):
    batches = [xpscratch.to_numpy(i) for i in batch_indices(RandomStream(3, "b"), 10, 4)]
    ref = _host("b", 0, 10)
    assert [len(b) for b in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate(batches), ref)
    # the next epoch draws the next permutation of the same stream
    stream = RandomStream(3, "b")
    list(batch_indices(stream, 10, 4))
    second = np.concatenate([xpscratch.to_numpy(i) for i in batch_indices(stream, 10, 4)])
    np.testing.assert_array_equal(second, _host("b", 1, 10))


def test_epoch_order_with_an_epoch_is_resumable_and_batch_at_clips(backend):
    b = xpscratch.get_backend()
    stream = RandomStream(3, "trainer/shuffle")
    order = epoch_order(stream, 11, epoch=5, xp=b.xp, device=b.device)
    np.testing.assert_array_equal(xpscratch.to_numpy(order), _host("trainer/shuffle", 5, 11))
    assert stream.counter == 6
    last = xpscratch.to_numpy(batch_at(order, 2, 4, 11))
    np.testing.assert_array_equal(last, _host("trainer/shuffle", 5, 11)[8:])


def test_iterate_batches_spans_epochs_with_full_batches_only():
    got = [xpscratch.to_numpy(i) for i in iterate_batches(RandomStream(3, "b"), 10, 4, 5)]
    assert [len(b) for b in got] == [4, 4, 4, 4, 4]
    np.testing.assert_array_equal(np.concatenate(got[:2]), _host("b", 0, 10)[:8])
    np.testing.assert_array_equal(np.concatenate(got[2:4]), _host("b", 1, 10)[:8])
