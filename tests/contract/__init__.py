"""One contract suite for the Integration Service, run against the sandbox and against a respx mock."""
