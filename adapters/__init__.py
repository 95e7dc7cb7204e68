"""Every edge to the outside world: brokers, databases, HTTP services, files."""
