"""The operations of DPHP as functions: what the `dphp` commands, the demo, the benchmark and
(later) HTTP endpoints call. They take the settings, return data and raise `OperatorError` (an
expected failure, one line) or `InvalidArgument` (the caller's mistake); parsing options and
formatting output is the caller's part.

- `publishing`: validate event files and publish the valid events (`publish`, `read_lines`).
- `status`: positions, lag and freshness of the projection (`gather_status`), `wait_for_convergence`.
- `regions`: region names and the check of a region code.
- `reading`: recaps of regions (`report`) and meetings from the reader views.
- `deadletters`: list, select and re-publish dead letters.
- `replay`: rebuild the projection from the topics and switch over.
"""
