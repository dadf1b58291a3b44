"""The ``blockfuse`` command line: one module per subcommand, joined in :mod:`host.cli.main`."""
