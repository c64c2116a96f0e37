"""keyhouse: API keys, scoped permissions and publishable client-side tokens (Paddle Billing API v1 wire)."""

__version__ = "0.1.0"
