"""A file script that goes wrong in a way a test chooses (``--how``)."""

import os
import signal
import sys

from jupyter_jobserver import context

how = sys.argv[sys.argv.index("--how") + 1]
if how == "bad_result":
    with open(os.environ["JUPYTER_JOBSERVER_RESULT"], "w") as f:
        f.write("{not json")
elif how == "killed":
    os.kill(os.getpid(), signal.SIGKILL)
elif how == "progress_storm":
    steps = 20_000
    for i in range(steps):  # far more reports than anyone could read
        context.progress((i + 1) / steps, f"step {i + 1}")
    context.progress(message="3 files left")  # a message alone, that starts with a number
