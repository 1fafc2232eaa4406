"""safecity: accountable video analytics for cities, campuses and transport operators."""

__version__ = "0.1.0"
