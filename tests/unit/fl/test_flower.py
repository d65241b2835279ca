"""The Flower adapter's own rules, without Flower's loop: a model is its arrays' concatenation, and a client that
reports no loss or accuracy is refused before anything is recorded."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.client import NumPyClient

from medfabric.fl.flower import FlowerLedgerError, LedgerClient, flatten, unflatten


def test_a_model_is_its_arrays_concatenated_in_order():
    like = [np.zeros((2, 3)), np.zeros(1)]
    vector = np.arange(7, dtype=np.float64)

    arrays = unflatten(vector, like)

    assert [a.shape for a in arrays] == [(2, 3), (1,)]
    assert np.array_equal(flatten(arrays), vector)
    with pytest.raises(FlowerLedgerError, match="a model of 6 values does not fit arrays of 7"):
        unflatten(np.zeros(6), like)


class Quiet(NumPyClient):
    def fit(self, parameters, config):
        return parameters, 10, {"loss": 0.1}


class Untouchable:
    def __getattr__(self, name):
        raise AssertionError(f"the session was used ({name}) before the metrics were checked")


def test_a_client_without_the_metrics_the_ledger_records_is_refused_before_anything_is_written():
    client = LedgerClient(Quiet(), Untouchable(), "task-1")

    with pytest.raises(FlowerLedgerError, match="must report accuracy in its metrics"):
        client.fit([np.zeros(3)], {"round": 1})
