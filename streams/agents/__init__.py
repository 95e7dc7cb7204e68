"""The agents: one module per stream of responsibility."""
