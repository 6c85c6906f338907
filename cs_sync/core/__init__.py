"""Small shared pieces with no knowledge of any stage: the error family and exit codes
(and their precedence over a run's sets), the progress protocol, sizes, atomic files,
remote naming, safe local names, sharding.

May import: the standard library only (and nothing else of cs_sync but core).
"""
