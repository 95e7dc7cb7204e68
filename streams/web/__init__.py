"""HTTP: health, the REST API under /api/v1, served by Faust web."""
