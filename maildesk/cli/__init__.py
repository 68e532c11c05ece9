"""The ``maildesk`` command: :mod:`.main` parses arguments and dispatches to one module
per command group; :mod:`.errors` turns every failure into one line and a sysexits code.
"""
