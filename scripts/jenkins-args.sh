#!/bin/sh
# Turns the Jenkins parameters into voxops flags, so the Jenkinsfile holds no quoting logic.
# voxops validates every value itself (tags against vMAJOR.MINOR.PATCH, hosts against the inventory).
set -eu
case "${ACTION:?}" in
  deploy)   printf -- '--tag %s\n' "${TAG:?TAG is required for deploy}" ;;
  rollback) [ -n "${TAG:-}" ] && printf -- '--to %s\n' "$TAG" ;;
  restart)  : ;;
  *) echo "jenkins-args.sh: unknown ACTION $ACTION" >&2; exit 2 ;;
esac
[ -n "${FLEET_HOSTS:-}" ] && printf -- '--hosts %s\n' "$FLEET_HOSTS"
exit 0
