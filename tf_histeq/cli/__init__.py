"""The `tf-histeq` command line (also `python -m tf_histeq`).

Commands:

* `tf-histeq demo [-o DIR]`: equalize the built-in samples (`tf_histeq.samples`)
  and write the images, comparison figures and a table of statistics (`demo`).
* `tf-histeq equalize|clahe INPUT... -o OUTDIR [options]`: equalize image files
  and folders (`equalize`): a `tf.data` pipeline reads, decodes and equalizes in
  parallel (`pipeline`), as OpenCV and Pillow read the files (JPEG IDCT and
  EXIF orientation, BMP bit masks, transparency: `decoding`), optionally on
  the workers of a `tf.data` service (`service`), and the outputs are encoded
  and written here (`files`). The
  options are the keyword names of `tf_histeq.equalize_hist` and
  `tf_histeq.clahe` with dashes, with their choices and defaults
  (`tf_histeq._options`). Volume files (NIfTI; TIFF, a stack of pages or one
  2-D image), named or in folders beside the images, are read, processed with
  `spatial_dims=3` (a one-page TIFF as an image) and written back in their own
  format with their metadata, one at a time (`volfiles`, `tf_histeq.volumes`);
  `clahe` refuses volumes, naming `tf_histeq.equalize_adapthist`.
* `tf-histeq match INPUT... -o OUTDIR --reference FILE_OR_DIR [options]`: map
  each image's histogram onto a reference's, as `tf_histeq.match_histograms`,
  with `equalize`'s machinery and options (`--value-range`, `--bins`,
  `--channels per_channel|joint`, `--alpha`). The reference is an image file,
  a volume file, or a folder whose images' (or volumes') histograms are pooled per channel
  (`tf_histeq.reference_histogram`; its subfolders too with `-r`), decoded and
  counted as the inputs are (`match`). It is settled before any output is
  written: one that cannot be read, an empty folder, one that mixes bit depths
  or channel counts, one inside the output folder or containing it, or one
  that fits none of the inputs is a usage error; an input whose bit depth or
  channels do not fit it fails alone. With `--data-service` the histogram
  travels to the workers as a constant of the pipeline's graph.
* `tf-histeq bench ARGS`: the benchmark, `tf_histeq.bench.main(ARGS)`.

Nothing is lost or overwritten: inputs are never written to; existing outputs
are kept unless `--overwrite` (so a rerun skips finished files and an
interrupted run resumes); every file is written under a temporary name in its
folder and takes its final name in one atomic step that fails if the name is
taken, so two runs writing into one folder never replace each other's files;
its data is synced to the disk before it is named (`writing.write_atomic`); no
output is written where its folder resolves into an input (`listing.guard`);
every path the listing leaves out is reported (`listing.collect`); a file
that cannot be read or decoded is reported with its path and the reason while
the others go on. The same holds for a file deleted or replaced mid-run, and
for an output that cannot be written (a full disk): the temporary file is
removed and the input is reported. A first Ctrl-C
(SIGINT), SIGTERM or SIGHUP stops the run after the file in hand, a second one
at once; either way no partial file is left, and the same command again does
the rest (`terminal`); a temporary file left by kill -9 is removed by the next
run (`writing.remove_stale`). Exit status: 0 when every input succeeded, 1 when
any failed, 2 for a usage error (`tf-histeq: error: ...`), 128 + the signal's
number when interrupted: 130 (SIGINT), 143 (SIGTERM), 129 (SIGHUP) (`app`).

TensorFlow is imported only once a command needs it, so `tf-histeq --help`
returns at once.
"""

from tf_histeq.cli.app import main

__all__ = ["main"]
