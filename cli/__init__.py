"""worldgen command-line interface (installed as worldgen.cli)."""
