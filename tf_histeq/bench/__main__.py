"""`python -m tf_histeq.bench ARGS`, the same as `tf-histeq bench ARGS`."""

from tf_histeq.bench.command import main

if __name__ == "__main__":
    raise SystemExit(main())
