"""Running velocity totals: counters kept in the transactions that change what they count.

`track.py` queues each approval's change and writes it at commit; `read.py` answers `totals.*` from
the counters in a few index lookups, whatever the number of stored requests.
"""
