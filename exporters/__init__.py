"""Asset writers (installed as worldgen.exporters)."""
