"""maildesk: a self-hosted, email-driven helpdesk daemon."""

__all__ = ["__version__"]
__version__ = "0.1.0"
