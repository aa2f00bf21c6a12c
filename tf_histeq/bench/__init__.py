"""`tf-histeq bench`: throughput of tf_histeq against its peers, and of the ways in, in one run.

Every figure is the median wall time of several runs after warm-up, turned into
megapixels per second (MP/s, where a megapixel is 10**6 samples: N * H * W * C),
and every ratio compares two figures taken in the same run, in interleaved
rounds. Absolute figures drift between runs and machines; ratios are what to
quote. What is measured, per workload (`workloads`):

* batches in memory: the peers (`peers`: OpenCV, Pillow and scikit-image
  looping over images and channels, Keras's `Equalization` and CLAHE layers,
  the original numpy function) and tf_histeq (`ours`: the op eagerly, in
  `tf.function` and under XLA; `map_fn` in a `tf.data` pipeline, with the cost
  the map adds to it; a Keras model holding the layer, `predict_on_batch`);
* a folder of PNG files: a `tf.data` pipeline with `map_fn("clahe")` against
  the same pipeline with `tf.numpy_function` around OpenCV, and the
  `tf-histeq clahe` command against a plain OpenCV loop script (`files`);
* the ImageDataGenerator function on one image, and the peak memory of `clahe`
  in fresh subprocesses (`memory`).

Every tf_histeq row's output is compared pixel for pixel with the OpenCV row of
its workload. `noise` says when a figure is measurable (its noise, from the
spread of the timed rounds); `targets` holds the guards (PASS/MISS: a
regression) and goals (REACHED/NOT REACHED, with the gap and what bounds it),
judged on full runs only; `report` renders the results, `command` is the
command line (`main`). To add a row, write a builder in `ours` (or `peers`)
and add an `Impl` to the table of its kind in `rows`; to give it a target,
add a `Target` to `targets.TARGETS`.
"""

from tf_histeq.bench.command import main

__all__ = ["main"]
