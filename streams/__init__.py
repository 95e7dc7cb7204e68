"""Faust wiring: the app, its topics, agents, tables, timers, web views and CLI."""
