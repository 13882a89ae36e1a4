"""Report exactly what this process was given: argv, data, environment, progress."""

import json
import os
import sys

from jupyter_jobserver import context

data = os.environ.get("JUPYTER_JOBSERVER_DATA")
content = None
if data and data.endswith(".json"):
    with open(data) as f:
        content = json.load(f)
parameters = None
if len(sys.argv) > 1 and sys.argv[-1].endswith("parameters.json"):
    with open(sys.argv[-1]) as f:
        parameters = json.load(f)
context.progress(0.25, "argv read")
print("stderr is not failure", file=sys.stderr)
with open(os.environ["JUPYTER_JOBSERVER_RESULT"], "w") as f:
    json.dump(
        {
            "argv": sys.argv[1:],
            "data": data,
            "data_content": content,
            "parameters": parameters,
            "cwd": os.getcwd(),
            "job_id": context.job_id(),
            "cores": context.cores(),
        },
        f,
    )
