"""Display at the edge: rich live bars and tables on a terminal, plain lines elsewhere.

May import: every engine package (to read their results), rich. Never imported by the engine.
"""
