"""Project-wide pytest configuration: Hypothesis profiles.

Profiles (select with the HYPOTHESIS_PROFILE environment variable):

* ``ci`` (default): bounded and reproducible. ``derandomize=True`` makes every run draw the same
  examples, so CI failures replay exactly; example counts are sized so the whole suite stays well
  under 15 minutes on 2 cores.
* ``thorough``: for hunting bugs. Many more examples, random seeds, longer stateful runs. A
  failure found here must be added as an explicit ``@example`` (or a regression test) so the
  ``ci`` profile keeps checking it.
* ``dev``: like ``ci`` but random, for quick local runs.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

settings.register_profile(
    "ci",
    max_examples=100,
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
    stateful_step_count=50,
)
settings.register_profile(
    "thorough",
    max_examples=5000,
    deadline=None,
    stateful_step_count=200,
    suppress_health_check=[HealthCheck.too_slow],
    phases=list(Phase),
)
settings.register_profile(
    "dev",
    max_examples=100,
    deadline=None,
    stateful_step_count=50,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
