"""maildesk.toml -> frozen dataclasses, and secrets from files, environment or commands.

::

    sections.py     one frozen dataclass per section, and Config holding them (the keys and defaults)
    load.py         the file read and validated into those dataclasses
    credentials.py  secret values from the file, the environment, a file or a command
    web.py          the [web] section: listen address, base URL, TLS, sign-in and page limits
    toml.py         best-effort line numbers in TOML text, and TOML syntax errors as ConfigError
"""
