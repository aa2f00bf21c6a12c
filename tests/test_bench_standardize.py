"""The bench rows of the standardization ops (tf_histeq.bench.standardize) on small volumes: ours = TorchIO / MONAI.

Slow tier: importing PyTorch, TorchIO and MONAI takes about 15 s.
"""

from __future__ import annotations

import numpy as np
import pytest

from tf_histeq.bench import rows, run, workloads
from tf_histeq.bench.workloads import Workload

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("kind", ["nyul", "percentiles"])
@pytest.mark.parametrize("dtype", ["uint16", "int16", "float32"])
def test_rows_equal_their_reference(kind, dtype):
    pytest.importorskip("torchio" if kind == "nyul" else "monai")
    w = Workload(f"{kind}_{dtype}", kind, (1, 16, 32, 32, 1), dtype, None if dtype == "float32" else (0, 4095))
    x = workloads.make_input(w.shape, w.dtype, w.value_range, seed=workloads.SEED)
    import tensorflow as tf

    ctx = {"numpy": x, "tensor": tf.constant(x), "op_kwargs": w.op_kwargs}
    peer, *ours = rows.impls_for(w)
    assert peer.ref == "cv2" and [impl.group for impl in ours] == ["ours", "ours"]
    expected = peer.build(w, ctx)()
    for impl in ours:
        got = impl.build(w, ctx)()
        assert got.dtype == expected.dtype == np.float32
        assert run.compare_outputs(got, expected) == (0, x.size), impl.label


def test_full_run_lists_the_volumes():
    keys = {w.key: w for w in workloads.FULL_WORKLOADS}
    for kind in ("nyul", "percentiles"):
        for dtype in ("uint16", "int16", "float32"):
            assert keys[f"{kind}_{dtype}"].shape == (1, 128, 256, 256, 1)
