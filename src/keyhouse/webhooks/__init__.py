"""Webhook delivery: the sender (the one place that opens connections to destinations, SSRF guard
inside) and the worker that drains the notifications queue."""
