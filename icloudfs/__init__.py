"""icloudfs: iCloud Drive as a local folder on Linux (FUSE), with a control plane beside it."""

__version__ = "0.1.0"
__all__ = ["__version__"]
