"""Prints what it was started with as one JSON line: for quoting tests (no torch, starts fast)."""

import json
import os
import sys

print(
    json.dumps(
        {
            "argv": sys.argv[1:],
            "hostile": os.environ.get("HOSTILE"),
            "node": os.environ.get("CCPT_NODE_RANK"),
            "job": os.environ.get("CCPT_JOB_ID"),
            "cwd": os.getcwd(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        }
    ),
    flush=True,
)
