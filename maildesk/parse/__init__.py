"""Raw bytes to one parsed message: :class:`~maildesk.parse.message.InboundMessage`.

Pure functions over bytes and text; no database, no configuration.

::

    message.py     raw bytes -> InboundMessage (headers, addresses, text, attachments)
    parsed.py      the InboundMessage and DeliveryReport dataclasses parsing yields
    mimewalk.py    one walk over the MIME tree: text, HTML, attachments, winmail.dat
    charsets.py    bytes and encoded words to text, never raising
    quotes.py      the new text of a reply (quoted history and signature removed)
    subjects.py    reply prefixes and the ``[MD-1042]`` reference
    autodetect.py  bounce / autoresponder recognition without the standard markers
    addresses.py   sub-addresses (``support+TAG@domain``): base, tag, the support-address predicate
"""
