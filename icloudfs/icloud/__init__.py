"""The real backend: iCloud Drive through pyicloud (sign-in, session renewal, Drive calls)."""
