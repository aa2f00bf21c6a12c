"""Shared fixtures (run modes, a seeded generator) and the rule for missing test requirements.

The reference libraries and test tools of the `test` extra are requirements:
outside CI a test that needs a missing one is skipped (each test imports what it
needs with `pytest.importorskip`), but when the `CI` environment variable is set
(CI services set `CI=true`) a missing one stops the run before collection, so a
CI job can never pass by skipping the parity tests.
"""

from __future__ import annotations

import importlib
import importlib.util
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

RUN_MODES = ["eager", "function", "xla"]

# Module -> the distribution of the `test` extra that provides it.
TEST_REQUIREMENTS = {
    "cv2": "opencv-python-headless",
    "PIL": "pillow",
    "skimage": "scikit-image",
    "keras": "keras",
    "tf_keras": "tf_keras",
    "hypothesis": "hypothesis",
    "matplotlib": "matplotlib",
    "albumentations": "albumentations",
    "nibabel": "nibabel",
    "tifffile": "tifffile",
    # TorchIO's and MONAI's transforms: the references of tf_histeq.standardize (tests/test_standardize_references.py).
    "torch": "torch",
    "torchio": "torchio",
    "monai": "monai",
}
# Found, not imported, when checking: importing PyTorch takes about 15 s on 2 cores.
FOUND_ONLY = ("torch", "torchio", "monai")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing_requirements() -> list[str]:
    """The distributions of `TEST_REQUIREMENTS` whose module does not import."""
    missing = []
    for module, distribution in TEST_REQUIREMENTS.items():
        if module in FOUND_ONLY:
            if importlib.util.find_spec(module) is None:
                missing.append(distribution)
            continue
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(distribution)
    return missing


def pytest_configure(config):
    if in_ci():
        missing = missing_requirements()
        if missing:
            raise pytest.UsageError(
                f"CI is set and the test requirements {', '.join(missing)} are missing; a CI run must not skip "
                'the tests that need them. Install them with: pip install -e ".[test]"'
            )


# Under pytest-xdist (`--dist loadfile`, `--no-loadscope-reorder`) a worker takes the next whole
# module when it runs out of work, in this order: the longest modules go first (the longest job
# first), so that the modules left for the end are short and the workers finish together. The
# order is the modules' summed test time in a full run, slowest first; the other modules follow
# in collection order. One process (`-n 0`) keeps the collection order.
SLOWEST_MODULES = (
    "test_deploy",
    "test_distributed",
    "test_clahe_kernel",
    "test_cli",
    "test_jit",
    "test_cli_faults",
    "test_layers",
    "test_deploy_matrix",
    "test_random",
    "test_bench",
    "test_cli_demo",
    "test_cli_signals",
    "test_cli_match",
    "test_equalize_hist",
    "test_kernels_clip_count",
    "test_numpy_api",
    "test_matching",
    "test_data",
    "test_adapthist",
    "test_robustness",
    "test_clahe",
    "test_colour",
)


def pytest_collection_modifyitems(config, items):
    if not hasattr(config, "workerinput"):  # not an xdist worker
        return
    rank = {name: i for i, name in enumerate(SLOWEST_MODULES)}

    def module_rank(item) -> int:
        module = item.nodeid.split("::")[0].rsplit("/", 1)[-1].removesuffix(".py")
        return rank.get(module, len(rank))

    items[:] = sorted(items, key=module_rank)  # stable: each module's tests keep their order


def make_runner(mode: str):
    """Return `runner(op, images, **kwargs)` calling `op` eagerly, traced, or XLA-compiled.

    The traced modes use an input signature with unknown batch, height and width,
    so the ops are exercised with dynamic shapes.
    """
    import tensorflow as tf

    def runner(op, images, **kwargs):
        if mode == "eager":
            return op(images, **kwargs).numpy()
        images = tf.convert_to_tensor(images)
        shape = [None] * images.shape.rank
        if images.shape.rank > 2:
            shape[-1] = images.shape[-1]
        traced = tf.function(
            lambda x: op(x, **kwargs),
            input_signature=[tf.TensorSpec(shape, images.dtype)],
            jit_compile=mode == "xla",
        )
        return traced(images).numpy()

    return runner


@pytest.fixture(params=RUN_MODES)
def run(request):
    """Call an op eagerly, in `tf.function` with dynamic shapes, or under XLA (for comparisons with a reference)."""
    return make_runner(request.param)


@pytest.fixture(params=RUN_MODES[1:])
def traced(request):
    """Call an op in `tf.function` with dynamic shapes or under XLA (for comparisons with the eager op)."""
    return make_runner(request.param)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


# The reference libraries as fixtures, for tests that call them directly: skipped where missing (outside CI).
@pytest.fixture(scope="session")
def cv2():
    return pytest.importorskip("cv2")


@pytest.fixture(scope="session")
def skdata():
    return pytest.importorskip("skimage.data")
