"""maildesk.toml -> frozen dataclasses, and secrets from files, environment or commands.

::

    load.py         the file's tables and keys, validated, as a Config
    credentials.py  secret values from the file, the environment, a file or a command
    toml.py         best-effort line numbers in TOML text, and TOML syntax errors as ConfigError
"""
