"""The HTTP edge: routes, request parsing, auth and error translation."""
