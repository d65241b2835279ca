"""The `medfabric` command: `medfabric.cli.main` holds its groups, `emr` and `audit` their commands."""
