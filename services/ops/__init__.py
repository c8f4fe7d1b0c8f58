"""Running Linli: the `linli` command, the process supervisor behind `linli up`, demo data."""
