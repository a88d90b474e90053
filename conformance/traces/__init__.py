"""Regression traces that run on any implementation (issue 17).

* :mod:`.mapping` - from the explorer's system actions to adapter operations (a table, one row
  per action kind), and from a target's observations back to the recorded state;
* :mod:`.plans` - a trace's adapter scripts ("plans") with the observation expected at each
  operation, built from explorer, lockstep and capture traces, and kept in the trace file;
* :mod:`.replay` - running a trace on a target: the plans its capabilities allow, the verdict;
* :mod:`.shrink` - delta debugging (ddmin) over a plan's operations;
* :mod:`.corpus` - regression corpus folders (``smcd-check trace save``), the project's own
  corpus and how it is generated;
* :mod:`.chart` - a plan as a message sequence chart (the explorer's chart renderer);
* :mod:`.pytest_corpus` - a corpus folder as pytest tests (``pytest --smcd-corpus=DIR``).

This layer imports the spec and the explorer's trace reader, and reaches implementations only
through the adapter.
"""
