"""The public HTTP API: accounts, roles and tokens, routes that call the other services over RPC, live streams."""
