"""``python -m pyfaiss_dpq.bench``: the benchmark without the pyfaiss-dpq CLI."""

import argparse
import sys

from .runner import add_bench_arguments, run_bench


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pyfaiss_dpq.bench", description=__doc__.split("\n")[0])
    add_bench_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_bench(args)
    except (ValueError, OSError) as exc:  # bad dataset name or file: a message, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
