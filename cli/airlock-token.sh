#!/bin/sh
# What kubeconfigs run as kubectl's exec plugin where there is a /bin/sh (cli/commands/kubeconfig.ts):
#   sh airlock-token.sh PROFILE_DIR CACHE_NAME NODE AIRLOCK_TOKEN_ENTRY ARGS...
# kubectl runs its plugin twice per command, and Node takes ~40 ms of CPU just to start: this prints
# the token the CLI cached for the kubeconfig's binding (cli/token-cache.ts) without starting Node,
# when the window the CLI names for it has a token with more than the reuse margin left. On any
# doubt (no such file, not a private file, unreadable, expired, no clock) it runs the Node entry
# with the same arguments, which decides as it always does. It writes nothing to stderr itself.
# POSIX sh and ls/date only (Linux and macOS); every expansion quoted (profile paths may hold
# any character).
dir=$1
name=$2
shift 2 || exit 1

# No --profile-dir in the kubeconfig: the default, as cli/profile.ts finds it; unsure (empty): Node.
if [ -z "$dir" ]; then
  if [ -n "${AIRLOCK_PROFILE_DIR+set}" ]; then
    dir=$AIRLOCK_PROFILE_DIR
  elif [ -n "${XDG_CONFIG_HOME+set}" ]; then
    dir=${XDG_CONFIG_HOME:+$XDG_CONFIG_HOME/airlock}
  else
    dir=${HOME:+$HOME/.config/airlock}
  fi
fi

# A positive decimal of at most 12 digits, no leading zero (sh reads those as octal).
decimal() {
  case $1 in '' | 0* | *[!0-9]*) return 1 ;; esac
  [ "${#1}" -le 12 ]
}

# The window the CLI names for this binding (rewritten by `access request`), then its token:
# line 1 hand out until (epoch seconds, margin already taken off), line 2 the ExecCredential.
if [ -n "$dir" ] && [ -n "$name" ] && { IFS= read -r window; } 2>/dev/null <"$dir/tokens/$name.window"; then
  case $window in
    *[!A-Za-z0-9_-]*) ;;
    *)
      token=$dir/tokens/$name.window-$window.token
      # A regular file only its owner can read or write (ls -l shows a symlink as l...).
      case $(ls -ln "$token" 2>/dev/null) in
        -rw-------*)
          if { IFS= read -r until && IFS= read -r credential; } 2>/dev/null <"$token"; then
            now=$(date +%s 2>/dev/null)
            if decimal "$until" && decimal "$now" && [ "$now" -lt "$until" ]; then
              case $credential in
                '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",'*'}')
                  printf '%s\n' "$credential"
                  exit
                  ;;
              esac
            fi
          fi
          ;;
      esac
      ;;
  esac
fi
exec "$@"
