"""The command-line interface. Parses flags, calls the engine, renders results."""
