"""Display at the edge: rich on a terminal, plain lines elsewhere. The engine never imports this."""
