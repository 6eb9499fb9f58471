"""Growthlens dashboard: a Panel app that talks to the API over HTTP only."""
