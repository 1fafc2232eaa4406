"""safecity: accountable video analytics for cities, campuses and transport operators."""

import os

# numpy's OpenBLAS starts a thread per core and keeps them spinning after each call. The
# matrices here are small (decoding, scoring), the cores belong to the inference
# runtime, and the spinning threads cost a plate detection that follows a plate reading
# about a third of its time (26 -> 36 ms per 1280x720 frame). Set before numpy loads;
# an operator's own setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# OpenVINO reports its use to Google Analytics from the moment it is imported, and hangs
# a process's exit where there is no internet: declined before anything imports it
from safecity.telemetry import decline_usage_reports  # noqa: E402

decline_usage_reports()

__version__ = "0.1.0"
