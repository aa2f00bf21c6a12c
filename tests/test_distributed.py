"""Distributed use: MirroredStrategy, MultiWorkerMirroredStrategy, the tf.data service, XLA graphs for TPUs.

- Strategies need TensorFlow configured before it starts (two logical CPUs; a
  TF_CONFIG per worker), so those tests run small scripts in subprocesses that
  save their results; the assertions run here, against the functions.
- The tf.data service runs in-process: a dispatcher and two workers on localhost.
  `processing_mode="distributed_epoch"` splits the source among the workers, so
  each element is produced once (by one of them), in no particular order: the
  results are matched to the local ones by an id component. With
  `"parallel_epochs"` every worker produces the whole dataset: each element
  twice here, which shows that both workers ran the map function.
- TPUs cannot be tried here; what can be checked is that the XLA graphs of the
  ops, compiled for static shapes, are plain HLO (no custom calls, no dynamic
  dimensions, no dot or convolution whose precision a TPU lowers) in types that
  TensorFlow's TPU backend registers.

The multi-thread test of the NumPy/ImageDataGenerator functions is
tests/test_numpy_api.py::TestCompiledOnce::test_thread_safe_first_use_traces_each_function_once.
"""

from __future__ import annotations

import collections
import json
import re
import socket
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
import tensorflow as tf

import tf_histeq
from tests import _images
from tests._files import decode, write_png
from tests._references import assert_same_pixels
from tests._service import LocalService
from tests._subprocess import ROOT, python_env, run_npz_script, tail
from tf_histeq import cli, samples
from tf_histeq.cli import service as cli_service
from tf_histeq.data import map_fn

# Every test here starts data-service servers, worker processes or an XLA dump: slow.
pytestmark = pytest.mark.slow

ENV = python_env()
CLAHE_KWARGS = {"clip_limit": 3.0, "tile_grid_size": (2, 3)}


def _images_batch(count: int, shape=(24, 30, 3)) -> np.ndarray:
    # Each round of the designed images is cut from taller ones (other noise): no two images are alike.
    rounds = len(_images.VARIED)
    return np.stack([_images.varied(i, (shape[0] + i // rounds, *shape[1:]))[: shape[0]] for i in range(count)])


def _unused_ports(count: int) -> list[int]:
    """`count` distinct ports that were free a moment ago (for servers that cannot be given port 0)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


# --------------------------------------------------------------------------- MirroredStrategy, two logical CPUs

MIRRORED = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    import keras
    from tf_histeq.layers import CLAHE, HistogramEqualization

    x = np.load(sys.argv[1])["images"]
    CLAHE_KWARGS = dict(clip_limit=3.0, tile_grid_size=(2, 3))

    def build():
        inputs = keras.Input(shape=x.shape[1:], dtype="uint8")
        outputs = [HistogramEqualization()(inputs), CLAHE(**CLAHE_KWARGS)(inputs)]
        return keras.Model(inputs, outputs)

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    with strategy.scope():
        model = build()
    mirrored = model.predict(x, batch_size=4, verbose=0)  # 7 images: batches of 2 + 2 and 2 + 1

    # By hand: each replica equalizes its part of the global batch (the last one: 1 and 0 images).
    layer = CLAHE(**CLAHE_KWARGS)
    dist = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices(x).batch(6))

    @tf.function
    def step(batch):
        ctx = lambda: tf.distribute.get_replica_context().replica_id_in_sync_group
        return strategy.run(lambda b: (layer(b), tf.fill(tf.shape(b)[:1], ctx())), args=(batch,))

    parts, replicas = [], []
    for batch in dist:
        out, ids = step(batch)
        parts += [v.numpy() for v in strategy.experimental_local_results(out)]
        replicas += [v.numpy() for v in strategy.experimental_local_results(ids)]

    np.savez(
        sys.argv[2],
        eq=mirrored[0], clahe=mirrored[1],
        run_clahe=np.concatenate(parts), replicas=np.concatenate(replicas),
    )
    """
)


@pytest.mark.slow
def test_mirrored_strategy_on_two_devices_gives_the_single_device_outputs(tmp_path):
    x = _images_batch(7)
    out = run_npz_script(MIRRORED, tmp_path, timeout=240, images=x)
    expected_eq = tf_histeq.equalize_hist(x).numpy().astype(np.float32)
    expected_clahe = tf_histeq.clahe(x, **CLAHE_KWARGS).numpy().astype(np.float32)
    # One device's `predict` gives the functions' pixels (tests/test_layers.py, TestModels): here the
    # strategy's `predict` is compared with the functions directly, without a one-device model to trace.
    assert_same_pixels(out["eq"], expected_eq, "MirroredStrategy predict vs the function, equalize_hist:")
    assert_same_pixels(out["clahe"], expected_clahe, "MirroredStrategy predict vs the function, clahe:")
    assert_same_pixels(out["run_clahe"], expected_clahe, "strategy.run, per replica, clahe:")
    assert out["replicas"].tolist() == [0, 0, 0, 1, 1, 1, 0]  # both replicas did work; the last one got 0 images


# --------------------------------------------------------------------------- MultiWorkerMirroredStrategy, two processes

# Keras 3's `model.fit` does not run under MultiWorkerMirroredStrategy (keras-team/keras#20585,
# "Attempt to convert a value (PerReplica...)", with any model); a custom loop is what works.
MULTI_WORKER = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf
    import keras
    from tf_histeq.layers import CLAHE

    x = np.load(sys.argv[1])["images"]
    y = np.linspace(0, 1, len(x), dtype="float32")[:, None]
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync
    GLOBAL_BATCH = 4
    keras.utils.set_random_seed(7)
    with strategy.scope():
        inputs = keras.Input(shape=x.shape[1:], dtype="uint8")
        equalized = CLAHE(clip_limit=3.0, tile_grid_size=(2, 3))(inputs)
        h = keras.layers.Rescaling(1 / 255)(equalized)
        h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation="relu")(h))
        model = keras.Model(inputs, [keras.layers.Dense(1)(h), equalized])
        optimizer = keras.optimizers.SGD(0.1)
        optimizer.build(model.trainable_variables)

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    data = tf.data.Dataset.from_tensor_slices((x, y, np.arange(len(x))))
    data = data.batch(GLOBAL_BATCH, drop_remainder=True).with_options(options)
    dist = strategy.experimental_distribute_dataset(data)

    @tf.function
    def train_step(batch):
        def step(images, targets, ids):
            with tf.GradientTape() as tape:
                prediction, eq = model(images, training=True)
                loss = tf.reduce_sum(tf.square(prediction - targets)) / GLOBAL_BATCH
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss, eq, ids

        loss, eq, ids = strategy.run(step, args=batch)
        return strategy.reduce("SUM", loss, axis=None), strategy.gather(eq, axis=0), strategy.gather(ids, axis=0)

    losses, ids, outputs = [], [], []
    for epoch in range(2):
        for batch in dist:
            loss, eq, index = train_step(batch)
            losses.append(float(loss))
            if epoch == 0:
                ids.append(index.numpy())
                outputs.append(eq.numpy())
    np.savez(
        sys.argv[2], loss=np.array(losses), clahe=np.concatenate(outputs), ids=np.concatenate(ids),
        **{f"w{i}": w for i, w in enumerate(model.get_weights())},
    )
    """
)


def _run_workers(tmp_path, count: int, timeout: float = 240) -> tuple[list[int], list[str]]:
    """Run `MULTI_WORKER` in `count` processes of one cluster; return their exit codes and logs.

    A TF_CONFIG cluster lists every worker's port before any worker starts, so
    the ports cannot be left to the servers (port 0). A port found free can be
    taken by another process before the worker binds it; the worker then fails
    with "Could not start gRPC server", and the cluster is started again on other
    ports. When one worker fails, the others (waiting for it) are stopped.
    """
    for _ in range(3):
        cluster = {"worker": [f"127.0.0.1:{port}" for port in _unused_ports(count)]}
        processes, logs = [], [tmp_path / f"w{index}.log" for index in range(count)]
        try:
            for index in range(count):
                task = {"cluster": cluster, "task": {"type": "worker", "index": index}}
                command = [
                    sys.executable,
                    "-c",
                    MULTI_WORKER,
                    str(tmp_path / "in.npz"),
                    str(tmp_path / f"w{index}.npz"),
                ]
                with open(logs[index], "w") as log:
                    processes.append(
                        subprocess.Popen(
                            command, env={**ENV, "TF_CONFIG": json.dumps(task)}, cwd=ROOT, stdout=log, stderr=log
                        )
                    )
            deadline = time.monotonic() + timeout
            while any(p.poll() is None for p in processes) and time.monotonic() < deadline:
                if any(p.poll() not in (None, 0) for p in processes):
                    break
                time.sleep(0.2)
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                process.wait(timeout=30)
        codes, texts = [p.returncode for p in processes], [log.read_text() for log in logs]
        if not any("Could not start gRPC server" in text for text in texts):
            break
    return codes, texts


@pytest.mark.slow
def test_multi_worker_mirrored_strategy_trains_with_the_layer_on_two_local_workers(tmp_path):
    x = _images_batch(16)
    np.savez(tmp_path / "in.npz", images=x)
    codes, logs = _run_workers(tmp_path, 2)
    for code, log in zip(codes, logs, strict=True):
        assert code == 0, tail(log)

    results = [np.load(tmp_path / f"w{index}.npz") for index in range(2)]
    expected = tf_histeq.clahe(x, **CLAHE_KWARGS).numpy().astype(np.float32)
    for index, result in enumerate(results):
        assert sorted(result["ids"].tolist()) == list(range(16)), result["ids"]  # the whole epoch, across workers
        assert_same_pixels(result["clahe"], expected[result["ids"]], f"worker {index}, the layer's output:")
        assert result["loss"].shape == (8,) and np.isfinite(result["loss"]).all()
    assert results[0]["loss"].tolist() == results[1]["loss"].tolist()
    weights = sorted(name for name in results[0].files if name.startswith("w"))
    assert weights
    for name in weights:  # synchronous training: the same weights on both workers
        assert_same_pixels(results[0][name], results[1][name], f"weights {name}:")


# --------------------------------------------------------------------------- the tf.data service, in-process


@pytest.fixture(scope="module")
def service():
    server = LocalService(workers=2)
    try:
        yield server
    finally:
        server.retire()


def _service_source(count: int) -> tf.data.Dataset:
    """`(image, id)` elements of varying sizes, from constants (the service serializes the graph)."""
    images = _images_batch(count, shape=(36, 40, 3))
    heights = tf.constant([36 - 3 * (i % 4) for i in range(count)])
    widths = tf.constant([40 - 5 * (i % 3) for i in range(count)])
    ids = tf.range(count)
    return tf.data.Dataset.from_tensor_slices((images, ids)).map(lambda image, i: (image[: heights[i], : widths[i]], i))


@pytest.mark.parametrize(
    ("op", "kwargs", "function", "mode", "copies"),
    [
        # "distributed_epoch" splits the source among the workers: each element once.
        pytest.param(
            "equalize_hist",
            {"channels": "luminance"},
            tf_histeq.equalize_hist,
            "distributed_epoch",
            1,
            id="equalize_hist",
        ),
        pytest.param("clahe", CLAHE_KWARGS, tf_histeq.clahe, "distributed_epoch", 1, id="clahe"),
        # "parallel_epochs" has every worker produce the whole dataset: each element once per worker,
        # which shows that both workers ran the map function.
        pytest.param("clahe", CLAHE_KWARGS, tf_histeq.clahe, "parallel_epochs", 2, id="clahe-every-worker"),
    ],
)
def test_map_fn_on_the_data_service_gives_the_local_images(service, op, kwargs, function, mode, copies):
    count = 12
    local = _service_source(count).map(map_fn(op, **kwargs), num_parallel_calls=tf.data.AUTOTUNE)
    distributed = local.apply(tf.data.experimental.service.distribute(mode, service.target))
    expected = {int(i): image.numpy() for image, i in local}
    got = collections.defaultdict(list)
    for image, i in distributed:
        got[int(i)].append(image.numpy())
    assert sorted(got) == list(range(count)), sorted(got)
    assert {i: len(images) for i, images in got.items()} == dict.fromkeys(range(count), copies)
    source = {int(i): image.numpy() for image, i in _service_source(count)}
    for i in range(count):
        assert_same_pixels(expected[i], function(source[i], **kwargs).numpy(), f"element {i}, local vs function:")
        for copy in got[i]:
            assert_same_pixels(copy, expected[i], f"element {i}, service vs local:")


# --------------------------------------------------------------------------- the CLI on the tf.data service


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Good images (8- and 16-bit PNG, RGBA, JPEG, BMP in a subfolder) and bad ones."""
    Image = pytest.importorskip("PIL.Image")
    root = tmp_path_factory.mktemp("service_inputs")
    scene = samples.color_scene((40, 56), seed=2)
    for i in range(6):
        write_png(root / f"xray{i}.png", samples.chest_xray((48 + i, 64), seed=i))
    write_png(root / "xray16.png", samples.chest_xray((48, 64), bits=12, seed=9))
    write_png(root / "rgba.png", np.dstack([scene, np.full(scene.shape[:2], 200, np.uint8)]))
    (root / "scene.jpg").write_bytes(tf.io.encode_jpeg(scene, quality=90).numpy())
    (root / "sub").mkdir()
    Image.fromarray(scene).save(root / "sub" / "scene.bmp")
    data = bytearray((root / "xray0.png").read_bytes())
    data[60:70] = b"\x00" * 10
    (root / "corrupt.png").write_bytes(bytes(data))  # fails to decode: on the worker, and here
    jpeg = (root / "scene.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    (root / "text.png").write_text("not a PNG\n")  # refused before the pipeline
    return root


GOOD = ["rgba.png", "scene.jpg", "sub/scene.bmp", *[f"xray{i}.png" for i in range(6)], "xray16.png"]


def _main(argv, capsys):
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _tree(folder) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_cli_on_the_data_service_equals_the_local_run(service, inputs, tmp_path, capsys):
    # One op is enough here: the service runs whatever pipeline the CLI builds (clahe on it: the map_fn test).
    command, options = "equalize", ["--method", "pil"]

    def function(image):
        return tf_histeq.equalize_hist(image, method="pil")

    local, remote = tmp_path / "local", tmp_path / "remote"
    code, out_local, err_local = _main([command, inputs, "-o", local, "-r", *options], capsys)
    assert code == 1, err_local
    code, out_remote, err_remote = _main(
        [command, inputs, "-o", remote, "-r", *options, "--data-service", service.target], capsys
    )
    assert code == 1, err_remote
    assert "10 processed, 0 skipped (output exists), 3 failed" in out_local
    assert "10 processed, 0 skipped (output exists), 3 failed" in out_remote
    assert f"; 10 done on the tf.data service at {service.target}" in out_remote  # every good file, there
    # The same report (a file that fails on the service is redone here, for its message) and the same files.
    errors = sorted(line for line in err_local.splitlines() if line.startswith("tf-histeq: /"))
    assert errors == sorted(line for line in err_remote.splitlines() if line.startswith("tf-histeq: /"))
    assert len(errors) == 3 and "Invalid PNG data" in "\n".join(errors) and "Invalid JPEG data" in "\n".join(errors)
    assert "did not come back" not in err_remote  # the bad files are not counted as lost work
    assert _tree(local) == _tree(remote)
    assert sorted(_tree(remote)) == sorted(GOOD)
    for name in GOOD:
        if not name.endswith(".jpg"):
            assert_same_pixels(decode(remote / name), function(decode(inputs / name)).numpy(), name)
    expected = tf.io.encode_jpeg(function(decode(inputs / "scene.jpg")).numpy(), quality=95).numpy()
    assert (remote / "scene.jpg").read_bytes() == expected
    # A rerun skips the finished files, with the service as without.
    code, out, _ = _main([command, inputs, "-o", remote, "-r", *options, "--data-service", service.target], capsys)
    assert code == 1 and "0 processed, 10 skipped (output exists), 3 failed" in out


def test_cli_waits_for_a_worker_and_says_so(inputs, tmp_path, capsys, monkeypatch):
    server = LocalService(workers=0)
    joiner = threading.Timer(1.5, server.add_worker)
    try:
        monkeypatch.setattr(cli_service, "SERVICE_WAIT_NOTE_S", 0.3)
        joiner.start()
        names = [inputs / "xray1.png", inputs / "rgba.png"]
        code, out, err = _main(["equalize", *names, "-o", tmp_path, "--data-service", server.target], capsys)
    finally:
        joiner.cancel()
        joiner.join()
        server.retire()
    assert code == 0, err
    assert f"nothing from the tf.data service at {server.target} after 0.3 s; waiting for a worker" in err
    assert "2 processed, 0 skipped (output exists), 0 failed" in out and "2 done on the tf.data service" in out
    for name in ("xray1.png", "rgba.png"):
        assert_same_pixels(decode(tmp_path / name), tf_histeq.equalize_hist(decode(inputs / name)).numpy(), name)


# The README's recipe: TensorFlow's own servers, in a process that never imports tf_histeq.
SERVERS = textwrap.dedent(
    """
    import sys
    import tensorflow as tf

    svc = tf.data.experimental.service
    dispatcher = svc.DispatchServer(svc.DispatcherConfig(port=0))
    worker = svc.WorkerServer(
        svc.WorkerConfig(dispatcher_address=dispatcher.target.split("://")[1], worker_address="127.0.0.1:%port%")
    )
    assert not [name for name in sys.modules if name.startswith("tf_histeq")]
    print(dispatcher.target, flush=True)
    dispatcher.join()
    """
)


@pytest.mark.slow
def test_cli_on_servers_that_know_nothing_of_tf_histeq(inputs, tmp_path, capsys, monkeypatch):
    """Workers need TensorFlow only; they read the inputs by absolute path whatever their working folder."""
    (tmp_path / "servers").mkdir()
    servers = subprocess.Popen(
        [sys.executable, "-c", SERVERS],
        env={**ENV, "PYTHONPATH": ""},
        cwd=tmp_path / "servers",
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        ready = threading.Event()
        line: list[str] = []
        threading.Thread(target=lambda: (line.append(servers.stdout.readline()), ready.set()), daemon=True).start()
        assert ready.wait(timeout=120) and line[0].startswith("grpc://"), (servers.poll(), line)
        target = line[0].strip()
        monkeypatch.chdir(inputs.parent)  # relative inputs here; the workers run elsewhere
        names = [f"{inputs.name}/xray2.png", f"{inputs.name}/rgba.png", f"{inputs.name}/sub/scene.bmp"]
        code, out, err = _main(["clahe", *names, "-o", tmp_path / "out", "--data-service", target], capsys)
    finally:
        servers.kill()
        servers.communicate(timeout=30)
    assert code == 0, err
    assert "3 processed, 0 skipped (output exists), 0 failed" in out and "3 done on the tf.data service" in out
    for name in ("xray2.png", "rgba.png", "scene.bmp"):
        source = inputs / ("sub/scene.bmp" if name == "scene.bmp" else name)
        assert_same_pixels(decode(tmp_path / "out" / name), tf_histeq.clahe(decode(source)).numpy(), name)


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("localhost:5050", r"--data-service must be grpc://HOST:PORT, the address of a tf\.data dispatcher"),
        ("grpc://localhost", r"--data-service must be grpc://HOST:PORT"),
        ("grpc://localhost:70000", r"--data-service must be grpc://HOST:PORT"),
        ("grpc://127.0.0.1:{closed}", r"cannot reach the tf\.data service dispatcher at grpc://127\.0\.0\.1:\d+ \("),
    ],
    ids=["no-scheme", "no-port", "bad-port", "nothing-listens"],
)
def test_cli_refuses_a_bad_or_unreachable_service_before_any_work(inputs, tmp_path, capsys, address, message):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # held, never listening: connections to it are refused, and no one else gets it
        address = address.format(closed=closed.getsockname()[1])
        code, out, err = _main(["equalize", inputs, "-o", tmp_path / "out", "--data-service", address], capsys)
    assert code == 2 and out == ""
    assert re.search(r"tf-histeq: error: " + message, err), err
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- XLA graphs for TPUs

# Element types of TensorFlow's TPU backend (kTpuAllTypes, tensorflow/core/tpu/tpu_defs.h) that the
# ops can produce, in HLO names; the tf2xla kernels are device-independent and the TPU backend's
# op filter (TpuOpFilter) keeps every one of them.
TPU_TYPES = {"pred", "u8", "u16", "s32", "u32", "s64", "f16", "bf16", "f32", "f64"}
PLAIN_HLO = {
    "abs", "add", "and", "bitcast-convert", "broadcast", "clamp", "compare", "concatenate", "constant", "convert",
    "divide", "floor", "gather", "get-tuple-element", "iota", "maximum", "minimum", "multiply", "not", "or",
    "pad", "parameter", "reduce", "reduce-window", "remainder", "reshape", "reverse", "round-nearest-even",
    "scatter", "select", "shift-left", "shift-right-arithmetic", "shift-right-logical", "slice", "subtract",
    "transpose", "tuple", "xor",
}  # fmt: skip
XLA_CASES = [
    pytest.param(tf_histeq.equalize_hist, {}, (2, 64, 48, 3), tf.uint8, id="equalize_hist-uint8"),
    pytest.param(
        tf_histeq.equalize_hist, {"method": "pil", "channels": "luminance"}, (2, 64, 48, 4), tf.uint8, id="pil-luma"
    ),
    pytest.param(tf_histeq.equalize_hist, {"channels": "joint"}, (1, 50, 40, 2), tf.uint16, id="joint-uint16"),
    pytest.param(tf_histeq.equalize_hist, {}, (2, 32, 32, 1), tf.float32, id="equalize_hist-float32"),
    pytest.param(tf_histeq.clahe, {}, (2, 64, 48, 3), tf.uint8, id="clahe-uint8"),
    pytest.param(
        tf_histeq.clahe, {"clip_limit": 0.0, "tile_grid_size": (3, 5)}, (1, 65, 47, 1), tf.uint8, id="clahe-odd"
    ),
    pytest.param(tf_histeq.clahe, {"channels": "luminance"}, (1, 40, 40, 3), tf.uint8, id="clahe-luma"),
    pytest.param(
        tf_histeq.clahe, {"value_range": (0, 4095), "bins": 4096}, (1, 48, 64, 1), tf.uint16, id="clahe-12-bit"
    ),
]


@pytest.mark.parametrize(("function", "kwargs", "shape", "dtype"), XLA_CASES)
def test_xla_graph_for_static_shapes_is_plain_hlo_for_tpus(function, kwargs, shape, dtype):
    rng = np.random.default_rng(3)
    top = {tf.uint8: 255, tf.uint16: 4095, tf.float32: 255}[dtype]
    x = tf.constant(rng.integers(top // 5, top // 2, shape), dtype)  # a narrow band: real work for the tables
    mask = tf.constant(_images.xray_mask(shape[1:3]))

    def compile_with(mask_arg):
        return tf.function(lambda images: function(images, mask=mask_arg, **kwargs), jit_compile=True)

    compiled = {"without mask": compile_with(None), "with mask": compile_with(mask)}
    for variant, graph in compiled.items():
        hlo = graph.experimental_get_compiler_ir(x)(stage="hlo")  # lowered only, not compiled: cheap
        instructions = set(re.findall(r"=\s*\S+\s+([a-z][\w-]*)\(", hlo))
        assert instructions and instructions <= PLAIN_HLO, (variant, sorted(instructions - PLAIN_HLO))
        assert "custom-call" not in hlo, variant  # no host callback
        assert not re.search(r"\[[^\]]*<=", hlo), variant  # no bounded dynamic dimension: every shape static
        types = set(re.findall(r"\b(pred|[usf]\d+|bf16)\[", hlo))
        assert types <= TPU_TYPES, (variant, sorted(types - TPU_TYPES))
    # Compiling and running costs seconds, so it is done once, on the masked variant; XLA's results
    # without a mask are compared with eager ones in test_equalize_hist.py and test_clahe.py.
    assert_same_pixels(compiled["with mask"](x).numpy(), function(x, mask=mask, **kwargs).numpy(), "XLA vs eager:")
