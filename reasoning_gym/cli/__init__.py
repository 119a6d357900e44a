"""The ``reasoning-gym`` command line; one module per subcommand group."""
