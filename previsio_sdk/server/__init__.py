"""The previsio platform: the HTTP server the SDK talks to.

Nothing in the SDK modules imports this package; it is started as a separate process, by ``previsio serve``
or by the SDK itself when no platform URL is configured (see :mod:`previsio_sdk.local`).
"""
