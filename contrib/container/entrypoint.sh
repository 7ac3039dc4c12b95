#!/bin/sh
# The container's one process: wait for a sign-in, then the mount in the foreground.
#
# A mount needs a signed-in account, and a container has no terminal to ask for a password, so
# until `docker exec -it icloudfs icloudfs login` has saved one, this waits and says how. Then
# it becomes `icloudfs mount --foreground --allow-other`: SIGTERM (docker stop) stores pending
# uploads for at most drain_timeout, unmounts and exits; what is left stays journaled in /data.
# Extra arguments go to `icloudfs mount` (e.g. --folder /LegalCases --read-only).
set -eu

mountpoint="${ICLOUDFS_MOUNTPOINT:-/icloud}"
config="${XDG_CONFIG_HOME:-$HOME/.config}/icloudfs/config.toml"
mkdir -p "$mountpoint"
umask 077

if ! grep -qs '^apple_id' "$config"; then
    trap 'exit 0' TERM INT  # docker stop before anyone signed in: nothing to store
    echo "icloudfs: not signed in yet. Sign in with:  docker exec -it ${HOSTNAME:-icloudfs} icloudfs login" >&2
    while ! grep -qs '^apple_id' "$config"; do
        sleep 2 &
        wait $! || true
    done
    trap - TERM INT
    echo "icloudfs: signed in; mounting on $mountpoint" >&2
fi

exec icloudfs mount --foreground --allow-other "$@" "$mountpoint"
