"""PostgreSQL: schema migrations and the repository the agents and views use."""
