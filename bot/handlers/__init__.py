"""Bolt listeners: thin, ack first, calling the container's services."""
