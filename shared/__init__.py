"""Code shared by the SSO and Contacts services: settings helpers, the one JSON error shape,
logging with request ids, metrics, health routes and the outbound HTTP client."""
