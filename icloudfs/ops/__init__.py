"""Running icloudfs as a service: logging, the mount(8) helper, systemd readiness, ``doctor``,
unmount progress and shell completion. Nothing here is needed to serve files; all of it is
needed to run a mount unattended and to find out why one does not work.
"""
