"""An iCloud web-services emulator that unmodified pyicloud can talk to over real TLS.

One HTTPS origin serves every Apple host by path (idmsa, setup, drivews, docws and
a cookie-less content host), so tests, demos and benchmarks run with no Apple
account. Start it with ``python -m icloudfs.emulator --data DIR`` or build the
ASGI app in-process with :func:`icloudfs.emulator.app.create_app`.
"""
