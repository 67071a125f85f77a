"""Virtual keys, model access, rate limits, budgets with holds, and usage.

``keys`` (records, hashing, the live key ring), ``access`` (model globs), ``limits`` (GCRA rate
windows), ``budgets`` (periods, holds, messages), ``usage`` (records and reports), ``store`` (the
``StateStore`` protocol) with ``memory`` (one process) and ``redis`` (many replicas), and ``hook``
(the ``DispatchHook`` that puts them in front of every edit).
"""
