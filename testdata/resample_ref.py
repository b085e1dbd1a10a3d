"""Reference for preprocess/resample tests: resampy 0.4.2 with its default kaiser_best filter.

  resample_ref.py filter         write resampy's shipped kaiser_best half_window (float64 LE) to stdout
  resample_ref.py resample CASES  CASES is a JSON list of {"in", "out", "sr_in", "sr_out"}: read float64 LE
                                 samples from "in", write resampy.resample(x, sr_in, sr_out) to "out";
                                 print a JSON list with the error message per case (null when it ran)
"""
import json
import sys

import numpy as np
import resampy
import resampy.filters


def main():
    if sys.argv[1] == "filter":
        win, precision, rolloff = resampy.filters.load_filter("kaiser_best")
        assert precision == 2**13 and rolloff == 0.917347, (precision, rolloff)
        sys.stdout.buffer.write(np.ascontiguousarray(win, dtype="<f8").tobytes())
    elif sys.argv[1] == "resample":
        with open(sys.argv[2]) as f:
            cases = json.load(f)
        errors = []
        for c in cases:
            x = np.fromfile(c["in"], dtype="<f8")
            try:
                y = resampy.resample(x, c["sr_in"], c["sr_out"])
            except ValueError as e:  # input too short for one output sample
                errors.append(str(e))
                continue
            errors.append(None)
            y.astype("<f8").tofile(c["out"])
        json.dump(errors, sys.stdout)
    else:
        sys.exit("unknown command " + sys.argv[1])


if __name__ == "__main__":
    main()
