"""`ovserve soak` (serving/cli.py runs serving.soak.run): mixed traffic against a real server,
failing on what must not happen. Parts: `report` (counts, RSS verdict, summary), `traffic` (the
clients and their checks), `run` (the run: server, RSS sampling, end checks, CLI)."""
