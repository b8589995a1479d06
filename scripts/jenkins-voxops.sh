#!/bin/sh
# How the Jenkinsfile runs voxops: scripts/jenkins-voxops.sh config-check|plan|run|health
#
# The build parameters arrive as environment variables (ACTION, ROLE, TAG, ENV, FLEET_HOSTS, and
# REPORTS for run). Each becomes exactly one argv word, quoted all the way, so a value is never
# split into several words or expanded as a glob. A value with whitespace or a control character,
# or one that starts with '-', is refused before voxops runs: it can only be a mistake or an
# attempt to pass voxops a flag through a parameter.
#
# It execs voxops, and the Jenkinsfile execs this script, so the process Jenkins signals on an
# abort IS voxops (SIGTERM: stop at the next safe point, release the locks); no shell in between
# waits on it or swallows the signal. VOXOPS_BIN names the CLI (tests point it at a stub).
set -eu

refuse() {
  echo "jenkins-voxops.sh: $*" >&2
  exit 2
}

# one parameter value, as one word
check() {
  case $2 in
    -*) refuse "$1='$2' starts with '-': voxops would read it as a flag" ;;
    *[[:space:]]* | *[[:cntrl:]]*) refuse "$1='$2' contains whitespace or a control character: one value per parameter (several hosts: comma-separated, no spaces)" ;;
  esac
}

[ $# -eq 1 ] || refuse "usage: jenkins-voxops.sh config-check|plan|run|health"
mode=$1
voxops=${VOXOPS_BIN:-bin/voxops}
check ENV "${ENV:?ENV is required}"

case $mode in
  config-check) set -- config check ;;
  health) set -- health ;;
  plan | run)
    check ACTION "${ACTION:?ACTION is required}"
    check ROLE "${ROLE:?ROLE is required}"
    check TAG "${TAG:-}"
    check FLEET_HOSTS "${FLEET_HOSTS:-}"
    set -- "$ACTION" "$ROLE"
    case $ACTION in
      deploy)
        [ -n "${TAG:-}" ] || refuse "TAG is required for deploy"
        set -- "$@" --tag "$TAG"
        ;;
      rollback) [ -z "${TAG:-}" ] || set -- "$@" --to "$TAG" ;;
      restart) [ -z "${TAG:-}" ] || echo "jenkins-voxops.sh: restart restarts what runs; TAG=$TAG is not used" >&2 ;;
      *) refuse "unknown ACTION '$ACTION' (deploy, rollback or restart)" ;;
    esac
    [ -z "${FLEET_HOSTS:-}" ] || set -- "$@" --hosts "$FLEET_HOSTS"
    if [ "$mode" = plan ]; then
      set -- "$@" --dry-run
    else
      check REPORTS "${REPORTS:?REPORTS is required for run}"
      set -- "$@" --report "$REPORTS"
    fi
    ;;
  *) refuse "unknown mode '$mode' (config-check, plan, run or health)" ;;
esac

exec "$voxops" "$@" --env "$ENV"
